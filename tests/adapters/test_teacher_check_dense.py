"""Issue 28 point 6 (segmentation, detection): the teacher check draws nothing from the student's
random streams. On the quick-start configs (tiny data, 2 iterations) the hook leaves the global
states as it found them and a run with the check trains the same student, bit for bit, as a run
without it (the issue's seg quick start: val mIoU 4.98 with the check vs 8.34 without).
Classification: tests/tools/test_teacher_check_cls.py."""
import os
import random

import numpy as np
import pytest
import torch
from test_mmdet_train import REPO, det_data, options_for, unformatted_config_dumps  # noqa: F401

from kdzoo.hooks.teacher_check import TeacherCheckHook
from kdzoo.rng import random_states

SEG = os.path.join(REPO, 'configs', 'seg', 'quickstart_msdcrd.py')
DET = os.path.join(REPO, 'configs', 'det', 'quickstart_pkd.py')


@pytest.fixture(scope='module')
def seg_data(tmp_path_factory):
    from kdzoo.toydata import make_seg_dataset
    return make_seg_dataset(str(tmp_path_factory.mktemp('seg')), num_images=(4, 2))


def seg_options(root, tmp_path):
    options = {'train_cfg.max_iters': 2, 'train_dataloader.batch_size': 2,
               'distill_cfg.teacher.checkpoint': None}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options.update({f'{loader}.dataset.data_root': root, f'{loader}.num_workers': 0,
                        f'{loader}.persistent_workers': False})
    return options


def config_of(task, data, tmp_path):
    """The quick-start config of ``task`` and its options (det: a random teacher checkpoint,
    written once, so both runs distil from the same teacher)."""
    if task == 'seg':
        return SEG, seg_options(data, tmp_path)
    return DET, options_for(DET, data, tmp_path)


def runner_of(config, options, work_dir, teacher_check):
    from kdzoo.runner import build_runner
    options = dict(options, **{'distill_cfg.teacher_check': teacher_check})
    return build_runner(config, cfg_options=options, work_dir=str(work_dir))


def data_of(task, request):
    return request.getfixturevalue('seg_data' if task == 'seg' else 'det_data')


def same_states(a, b):
    return (torch.equal(a['torch'], b['torch']) and a['python'] == b['python']
            and all(np.array_equal(np.asarray(x), np.asarray(y))
                    for x, y in zip(a['numpy'], b['numpy'])))


@pytest.mark.filterwarnings('ignore:distill_cfg.teacher has no checkpoint')
@pytest.mark.parametrize('task', ['seg', 'det'])
def test_the_check_leaves_the_global_random_states_as_it_found_them(task, request, tmp_path):
    config, options = config_of(task, data_of(task, request), tmp_path)
    runner = runner_of(config, options, tmp_path / 'work', True)
    runner._val_loop = runner.build_val_loop(runner._val_loop)  # as Runner.train does
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    before = random_states()
    TeacherCheckHook().before_train(runner)
    # the old check drew the val dataloader's base seed from the global torch stream
    assert same_states(before, random_states())


@pytest.mark.filterwarnings('ignore:distill_cfg.teacher has no checkpoint')
@pytest.mark.parametrize('task', ['seg', 'det'])
def test_a_run_with_the_check_trains_the_same_student_bit_for_bit(task, request, tmp_path):
    config, options = config_of(task, data_of(task, request), tmp_path)
    states = {}
    for check in (True, False):
        runner = runner_of(config, options, tmp_path / str(check), check)
        runner.train()
        states[check] = runner.model.student.state_dict()
    different = [k for k in states[True] if not torch.equal(states[True][k], states[False][k])]
    assert not different
