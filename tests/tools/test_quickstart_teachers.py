"""The quick-start teacher comparison (configs/quickstart/kd_cnn.py, kd_vit.py,
kd_two_teachers.py): three configs identical but for their teachers, with the same total
distillation weight, each of which trains from its teachers' checkpoints."""
import os

import pytest
import torch
from mmengine.config import Config
from tools_helpers import REPO

from kdzoo.teacher import teacher_configs
from kdzoo.toydata import make_shapes_dataset

CONFIGS = os.path.join(REPO, 'configs', 'quickstart')
ARMS = {'kd_cnn.py': ['cnn'], 'kd_vit.py': ['vit'], 'kd_two_teachers.py': ['cnn', 'vit']}
TEACHERS = {'cnn': 'teacher.py', 'vit': 'teacher_mobilevit.py'}


def load(name):
    return Config.fromfile(os.path.join(CONFIGS, name))


def test_the_arms_differ_only_in_their_teachers():
    configs = {name: load(name) for name in ARMS}
    rest = []
    for name, cfg in configs.items():
        distill = cfg.distill_cfg.to_dict()
        teachers = teacher_configs(distill)
        assert list(teachers) == ARMS[name]
        for teacher, teacher_cfg in teachers.items():  # the quick-start teacher configs
            assert teacher_cfg['config'] == os.path.join(CONFIGS, TEACHERS[teacher])
            assert teacher_cfg['checkpoint'] == \
                f'work_dirs/quickstart/{TEACHERS[teacher][:-3]}/iter_600.pth'
        items = distill.pop('losses')
        assert all(item['student'] == 'logits' for item in items)
        assert all(item['loss'] == dict(type='KDLoss', tau=4.0) for item in items)
        assert sum(item['weight'] for item in items) == 1.0
        del distill['teachers']
        rest.append((cfg.model, distill, {k: v for k, v in cfg.to_dict().items()
                                           if k not in ('distill_cfg', 'model')}))
    assert rest[0] == rest[1] == rest[2]  # student, schedule, data, seed, remaining settings


@pytest.fixture(scope='module')
def teacher_checkpoints(tmp_path_factory):
    """Both quick-start teachers trained 2 iterations on a tiny shapes set."""
    from tools.train import main
    root = tmp_path_factory.mktemp('quickstart')
    data = make_shapes_dataset(root / 'data', num_classes=10, per_class=(2, 1))
    options = [f'train_dataloader.dataset.root={data["train"]}',
               f'val_dataloader.dataset.root={data["val"]}',
               f'test_dataloader.dataset.root={data["val"]}', 'train_dataloader.batch_size=8',
               'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
               'default_hooks.checkpoint.interval=2']
    checkpoints = {}
    for name, config in TEACHERS.items():
        runner = main([os.path.join(CONFIGS, config), '--work-dir', str(root / name),
                       '--cfg-options', *options])
        checkpoints[name] = (str(root / name / 'iter_2.pth'), runner.model.state_dict())
    return options, checkpoints, root


@pytest.mark.parametrize('arm', list(ARMS))
def test_each_arm_trains_from_its_teachers(arm, teacher_checkpoints):
    from tools.train import main
    options, checkpoints, root = teacher_checkpoints
    runner = main([os.path.join(CONFIGS, arm), '--work-dir', str(root / arm), '--cfg-options',
                   *options, *(f'distill_cfg.teachers.{name}.checkpoint={checkpoints[name][0]}'
                               for name in ARMS[arm])])
    assert runner.iter == 2
    assert list(runner.model.teachers) == ARMS[arm]
    for name, teacher in runner.model.teachers.items():
        trained = checkpoints[name][1]
        assert all(torch.equal(v, trained[k]) for k, v in teacher.state_dict().items()), name
    for item in load(arm).distill_cfg.losses:
        values = runner.message_hub.get_scalar(f'train/distill.loss_{item["name"]}').data[0]
        assert len(values) == 2 and torch.isfinite(torch.tensor(values)).all(), item['name']
