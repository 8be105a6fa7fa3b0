"""kdzoo.experiments.timing.step_costs times like with like: the student's own step runs an
optimizer wrapper built from the run's optimizer config (its type and every setting, paramwise
ones included, over the student's parameters), and the teacher is timed as the distillation step
runs it (the adapter's ``teacher_step`` on the distilling model's preprocessed batch converted by
``teacher_inputs``, without grad and with the taps recording), never as a whole
``teacher(mode='tensor')`` forward: for seg items on backbone stages only, the teacher's decode
head does not run."""
import math
import os.path as osp

import pytest
import torch
from tools_helpers import SEED_LOSSES, TEACHER, runner_config, write_config

from kdzoo.experiments import matrix
from kdzoo.experiments.timing import step_costs
from kdzoo.runner import build_runner
from kdzoo.wrappers import unwrap

OPTIM = dict(optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.05, betas=(0.8, 0.95)),
             paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
SETTINGS = ('lr', 'weight_decay', 'betas', 'eps', 'amsgrad')


def kd_runner(shapes_data, teacher_checkpoint, tmp_path):
    """A distilling runner (KD) whose config trains with AdamW and paramwise settings; not
    trained: ``step_costs`` builds its optimizer wrapper."""
    cfg = runner_config(shapes_data, tmp_path / 'work', distill_cfg=dict(
        teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint), **SEED_LOSSES['kd']))
    cfg['optim_wrapper'] = OPTIM
    return build_runner(write_config(tmp_path / 'kd_adamw.py', cfg))


def settings(group):
    return tuple(tuple(group[k]) if k == 'betas' else group[k] for k in SETTINGS)


def test_the_student_step_runs_the_runs_optimizer_type_and_settings(
        shapes_data, teacher_checkpoint, tmp_path, monkeypatch):
    runner = kd_runner(shapes_data, teacher_checkpoint, tmp_path)
    student = unwrap(runner.model).student
    used, own_step = [], student.train_step

    def recording(data, optim_wrapper):
        used.append(optim_wrapper)
        return own_step(data, optim_wrapper)

    monkeypatch.setattr(student, 'train_step', recording)
    costs = step_costs(runner, 2, 'cpu')
    assert math.isfinite(costs['step_ratio']) and len(used) == 4  # 2 warm-up + 2 timed
    optim = used[0]
    assert all(u is optim for u in used)
    assert type(optim) is type(runner.optim_wrapper)
    assert type(optim.optimizer) is torch.optim.AdamW
    # the config's settings: weights decay, norms and biases do not (paramwise_cfg)
    assert {settings(g) for g in optim.optimizer.param_groups} == {
        (3e-4, 0.05, (0.8, 0.95), 1e-8, False), (3e-4, 0.0, (0.8, 0.95), 1e-8, False)}
    # every student parameter, with the settings the distillation step's optimizer gives it
    of_distill = {id(p): settings(g) for g in runner.optim_wrapper.optimizer.param_groups
                  for p in g['params']}
    of_student = {id(p): settings(g) for g in optim.optimizer.param_groups for p in g['params']}
    assert set(of_student) == {id(p) for p in student.parameters()}
    assert of_student == {k: of_distill[k] for k in of_student}


def test_the_teacher_is_timed_as_the_step_runs_it(shapes_data, teacher_checkpoint, tmp_path,
                                                  monkeypatch):
    runner = kd_runner(shapes_data, teacher_checkpoint, tmp_path)
    model = unwrap(runner.model)
    events, inside = [], []  # inside: True while a training step (student or distilling) runs

    def stepping(step):
        def run(*args, **kwargs):
            inside.append(True)
            try:
                return step(*args, **kwargs)
            finally:
                inside.pop()
        return run

    def whole_forward(*args, **kwargs):
        raise AssertionError('the teacher was timed as a whole forward (teacher(mode=...))')

    def recorder(name, fn, record):
        def run(*args):
            out = fn(*args)
            if not inside:
                events.append((name, record(args, out)))
            return out
        return run

    monkeypatch.setattr(model, 'train_step', stepping(model.train_step))
    monkeypatch.setattr(model.student, 'train_step', stepping(model.student.train_step))
    monkeypatch.setattr(model.teacher, 'forward', whole_forward)
    monkeypatch.setattr(model.data_preprocessor, 'forward', recorder(
        'preprocess', model.data_preprocessor.forward, lambda args, out: (args[1], out)))
    monkeypatch.setattr(model, 'teacher_inputs', recorder(
        'teacher_inputs', model.teacher_inputs, lambda args, out: (args[0], out)))
    monkeypatch.setattr(model, 'teacher_step', recorder(
        'teacher_step', model.teacher_step, lambda args, out: (
            args[1], torch.is_grad_enabled(), model.distiller.teacher_taps['teacher'].active)))
    costs = step_costs(runner, 2, 'cpu')
    assert costs['teacher_forward_s'] > 0
    (first, (training, batch)), *timed = events  # preprocessed once, in training mode
    assert first == 'preprocess' and training is True
    assert [name for name, _ in timed] == ['teacher_inputs', 'teacher_step'] * 4  # 2 + 2 runs
    for (_, (given, converted)), (_, (inputs, grad, recording)) in zip(timed[::2], timed[1::2]):
        assert given is batch['inputs'] and inputs is converted
        assert grad is False and recording is True


def test_seg_items_on_backbone_stages_do_not_run_the_teachers_decode_head(tmp_path,
                                                                         monkeypatch):
    pytest.importorskip('mmseg')
    opts = matrix.resolve('smoke', tasks=['seg'], out=str(tmp_path))
    pair, configs = next(iter(opts.task['seg'].pairs.items()))
    row = dict(task='seg', pair=pair, loss='LFCC', seed='0', budget='2it', teacher_iters='2',
               teacher_dtype='fp32')
    runner = matrix.retime_runner(matrix.row_options(opts, row), row, tuple(configs),
                                  matrix.prepare_data(opts, 'seg'))
    model = unwrap(runner.model)
    assert model.teacher_decodes == {'teacher': False}  # LFCC's seg items read stage1..4 only
    decoded, head = [], model.teacher.decode_head
    forward = head.forward

    def counted(*args, **kwargs):  # mmseg's own forwards call decode_head.forward directly
        decoded.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(head, 'forward', counted)
    costs = step_costs(runner, 2, 'cpu')
    assert decoded == [] and math.isfinite(costs['step_ratio'])
    assert osp.isdir(osp.join(str(tmp_path), 'tmp', 'retime', 'seg', pair))
