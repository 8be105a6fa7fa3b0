"""The quick start's student and distilling configs (configs/quickstart/student.py, msdcrd.py,
lfcc.py, mldrkd.py): the student is a ViT on a convolutional stem whose four stages share one 4x4
grid; lfcc.py holds the LFCC items the plug-and-play matrix fits to this pair; the plain-ViT
student stays the student of the teacher comparison and of the CPU matrix's pair."""
import os

import torch
from mmengine.config import Config
from tools_helpers import REPO

from kdzoo.experiments.matrix import PairProbe, load_profile
from kdzoo.experiments.recipes import recipe
from kdzoo.toydata import make_shapes_dataset

CONFIGS = os.path.join(REPO, 'configs', 'quickstart')
DISTILLED = ('msdcrd.py', 'lfcc.py', 'mldrkd.py')


def load(name):
    return Config.fromfile(os.path.join(CONFIGS, name))


def test_lfcc_holds_the_matrix_recipe_for_the_quickstart_pair():
    pair = PairProbe('cls', ('configs/quickstart/teacher.py', 'configs/quickstart/student.py'),
                     iters=500)
    fitted = recipe(os.path.join(REPO, 'configs', 'cls', 'lfcc_swin-t_to_r18_cifar100.py'), pair)
    distill = load('lfcc.py').distill_cfg.to_dict()
    assert distill['losses'] == fitted['losses']
    assert distill['connectors'] == fitted['connectors']
    assert pair.student == [(128, 4, 4)] * 4


def test_the_distilled_arms_share_the_student_and_its_budget():
    student = load('student.py').to_dict()
    for name in DISTILLED:
        cfg = load(name).to_dict()
        assert cfg.pop('distill_cfg')['teacher']['config'] == os.path.join(CONFIGS, 'teacher.py')
        assert {key: cfg.get(key) for key in student} == student, name  # model, data, schedule


def test_the_teacher_comparison_and_the_cpu_matrix_keep_the_plain_vit():
    plain = load('student_plain_vit.py').to_dict()
    assert plain['model']['model_name'] == 'vit_tiny_patch16_224'
    for name in ('kd_cnn.py', 'kd_vit.py', 'kd_two_teachers.py'):
        cfg = load(name).to_dict()
        del cfg['distill_cfg'], cfg['setup_command']
        assert cfg == {k: v for k, v in plain.items() if k != 'setup_command'}, name
    pairs = load_profile('cpu')['tasks']['cls'].pairs
    assert pairs['resnet10t_to_vit'] == ('configs/quickstart/teacher.py',
                                         'configs/quickstart/student_plain_vit.py')


def test_lfcc_trains_from_the_teacher(tmp_path):
    from tools.train import main
    data = make_shapes_dataset(tmp_path / 'data', num_classes=10, per_class=(2, 1))
    options = [f'train_dataloader.dataset.root={data["train"]}',
               f'val_dataloader.dataset.root={data["val"]}',
               f'test_dataloader.dataset.root={data["val"]}', 'train_dataloader.batch_size=8',
               'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
               'default_hooks.checkpoint.interval=2']
    main([os.path.join(CONFIGS, 'teacher.py'), '--work-dir', str(tmp_path / 'teacher'),
          '--cfg-options', *options])
    runner = main([os.path.join(CONFIGS, 'lfcc.py'), '--work-dir', str(tmp_path / 'lfcc'),
                   '--cfg-options', *options,
                   f'distill_cfg.teacher.checkpoint={tmp_path / "teacher" / "iter_2.pth"}'])
    assert runner.iter == 2
    for i in (1, 2, 3, 4):
        values = runner.message_hub.get_scalar(f'train/distill.loss_lfcc_stage{i}').data[0]
        assert len(values) == 2 and torch.isfinite(torch.tensor(values)).all(), i

