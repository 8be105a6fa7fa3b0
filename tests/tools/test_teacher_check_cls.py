"""Issue 28 point 6 (classification): the teacher check draws nothing from the student's random
streams. The hook leaves the global torch / numpy / Python states as it found them, and a run
with the check trains the same student, bit for bit, as a run without it (the student drops out
at random, so any draw of the check would shift its masks). Seg and det:
tests/adapters/test_teacher_check_dense.py."""
import random

import numpy as np
import pytest
import torch
from tools_helpers import (
    SEED_LOSSES,
    STUDENT,
    TEACHER,
    log_text,
    runner_config,
    write_config,
)

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


# -- several teachers (issue 26): each teacher checked as if it were the only one ---------------
def two_teacher_runner(shapes_data, checkpoints, root, teacher_check=True):
    """Teachers ``a`` (the ConvNeXt teacher) and ``b`` (the student's architecture, trained
    alone), an item on each, the dropping student."""
    from kdzoo.runner import build_runner
    teachers = dict(a=dict(config=TEACHER, checkpoint=checkpoints['a']),
                    b=dict(config=STUDENT, checkpoint=checkpoints['b']))
    losses = [dict(student='logits', teacher=f'{name}:logits', loss=dict(type='KDLoss'),
                   name=f'kd_{name}') for name in teachers]
    cfg = runner_config(shapes_data, root / 'work', model=DROPPING_STUDENT, max_iters=3,
                        distill_cfg=dict(teachers=teachers, teacher_check=teacher_check,
                                         losses=losses))
    return build_runner(write_config(root / 'two.py', cfg))


def single_teacher_runner(shapes_data, teacher, checkpoint, root):
    """The one-teacher config (``distill_cfg.teacher``) of ``teacher`` at ``checkpoint``."""
    from kdzoo.runner import build_runner
    distill_cfg = dict(teacher=dict(config=teacher, checkpoint=checkpoint), **SEED_LOSSES['kd'])
    cfg = runner_config(shapes_data, root / 'work', model=DROPPING_STUDENT,
                        distill_cfg=distill_cfg, max_iters=3)
    # a name of its own: MMEngine names a run's logger by config name and start second, and two
    # runners of one name built in the same second would share the first one's log file
    return build_runner(write_config(root / f'one_{root.name}.py', cfg))


def checked(runner):
    """``({message-hub key: value} of the teacher check, its log lines)`` of the check run on
    ``runner`` before training (the hook alone)."""
    runner._val_loop = runner.build_val_loop(runner._val_loop)  # as Runner.train does
    TeacherCheckHook().before_train(runner)
    infos = {k: v for k, v in runner.message_hub.runtime_info.items()
             if k.startswith('teacher_check/')}
    log, = log_text(runner.work_dir)
    return infos, [line.split(' - mmengine - INFO - ')[-1] for line in log.splitlines()
                   if 'teacher check (' in line]


@pytest.fixture(scope='module')
def checkpoints(teacher_checkpoint, second_teacher_checkpoint):
    return dict(a=teacher_checkpoint, b=second_teacher_checkpoint)


def test_every_teacher_is_checked_as_if_it_were_the_only_one(shapes_data, checkpoints,
                                                              tmp_path):
    (tmp_path / 'two').mkdir()
    runner = two_teacher_runner(shapes_data, checkpoints, tmp_path / 'two')
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    before = random_states()
    infos, lines = checked(runner)
    assert same_states(before, random_states())
    expected_infos, expected_lines = {}, []
    for name, config in (('a', TEACHER), ('b', STUDENT)):
        (tmp_path / name).mkdir()
        alone, (line,) = checked(single_teacher_runner(shapes_data, config, checkpoints[name],
                                                       tmp_path / name))
        assert set(alone) == {'teacher_check/cls/top1'}
        expected_infos.update({k.replace('teacher_check/', f'teacher_check/{name}/'): v
                               for k, v in alone.items()})
        assert line.startswith('teacher check (teacher on the val set): cls/top1: ')
        expected_lines.append(line.replace('(teacher on', f"(teacher '{name}' on"))
    assert infos == expected_infos
    assert lines == expected_lines
    # the two score differently (measured: 25.0 and 12.5), so checking one teacher twice fails
    assert infos['teacher_check/a/cls/top1'] != infos['teacher_check/b/cls/top1']


def test_the_one_teacher_form_keeps_its_keys_and_line(shapes_data, teacher_checkpoint, tmp_path):
    infos, lines = checked(single_teacher_runner(shapes_data, TEACHER, teacher_checkpoint,
                                                 tmp_path))
    assert list(infos) == ['teacher_check/cls/top1']
    assert lines == [f'teacher check (teacher on the val set): cls/top1: '
                     f'{infos["teacher_check/cls/top1"]:.4f}']


def test_two_teachers_checked_train_the_same_student_bit_for_bit(shapes_data, checkpoints,
                                                                 tmp_path):
    states = {}
    for check in (True, False):
        root = tmp_path / str(check)
        root.mkdir()
        runner = two_teacher_runner(shapes_data, checkpoints, root, check)
        runner.train()
        states[check] = runner.model.student.state_dict()
    assert states[True].keys() == states[False].keys()
    assert not [k for k in states[True] if not torch.equal(states[True][k], states[False][k])]
