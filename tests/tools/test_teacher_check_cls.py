"""Issue 28 point 6 (classification): the teacher check draws nothing from the student's random
streams. The hook leaves the global torch / numpy / Python states as it found them, and a run
with the check trains the same student, bit for bit, as a run without it (the student drops out
at random, so any draw of the check would shift its masks). Seg and det:
tests/adapters/test_teacher_check_dense.py."""
import random

import numpy as np
import torch
from tools_helpers import SEED_LOSSES, STUDENT, TEACHER, runner_config, write_config

from kdzoo.hooks.teacher_check import TeacherCheckHook
from kdzoo.rng import random_states

# the tiny student with dropout before its classifier: training draws from the global stream
DROPPING_STUDENT = dict(STUDENT, drop_rate=0.5)


def same_states(a, b):
    return (torch.equal(a['torch'], b['torch']) and a['python'] == b['python']
            and all(np.array_equal(np.asarray(x), np.asarray(y))
                    for x, y in zip(a['numpy'], b['numpy'])))


def distilling_runner(shapes_data, teacher_checkpoint, root, teacher_check):
    from kdzoo.runner import build_runner
    distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint),
                       teacher_check=teacher_check, **SEED_LOSSES['kd'])
    cfg = runner_config(shapes_data, root / 'work', model=DROPPING_STUDENT,
                        distill_cfg=distill_cfg, max_iters=3)
    return build_runner(write_config(root / 'kd.py', cfg))


def test_the_check_leaves_the_global_random_states_as_it_found_them(shapes_data,
                                                                    teacher_checkpoint, tmp_path):
    runner = distilling_runner(shapes_data, teacher_checkpoint, tmp_path, True)
    runner._val_loop = runner.build_val_loop(runner._val_loop)  # as Runner.train does
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    before = random_states()
    TeacherCheckHook().before_train(runner)
    assert runner.message_hub.get_info('teacher_check/cls/top1') is not None
    # the old check drew the val dataloader's base seed from the global torch stream
    assert same_states(before, random_states())


def test_a_run_with_the_check_trains_the_same_student_bit_for_bit(shapes_data,
                                                                 teacher_checkpoint, tmp_path):
    states = {}
    for check in (True, False):
        root = tmp_path / str(check)
        root.mkdir()
        runner = distilling_runner(shapes_data, teacher_checkpoint, root, check)
        runner.train()
        states[check] = runner.model.student.state_dict()
    assert states[True].keys() == states[False].keys()
    different = [k for k in states[True] if not torch.equal(states[True][k], states[False][k])]
    assert not different
