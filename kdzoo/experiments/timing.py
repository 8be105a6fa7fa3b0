"""Step costs of a distillation run, measured in its own process on one training batch.

Each figure is the median of ``repeats`` timed repetitions (after 2 warm-up ones; CUDA
synchronised), the model in training mode (the teacher stays in eval), on the run's first
training batch:

- ``student_step_s``: the student's own training step, ``student.train_step``: its data
  preprocessor, forward, loss, backward and an update by an optimizer wrapper built from the
  run's own ``optim_wrapper`` config (``runner.cfg.optim_wrapper``: the same wrapper type, AMP
  included, optimizer type, learning rate, weight decay and paramwise settings) over the
  student's parameters, as the student trained alone would run it;
- ``teacher_forward_s`` (distilling models; the CSVs' column name, kept: it is the teacher's
  no-grad forward): the teacher's part of the distillation step, run as
  ``DistillModel.recorded_step`` runs it: the batch the distilling model's data preprocessor
  gives in training mode (preprocessed once, outside the timing: the step preprocesses once for
  both models), then, for each teacher an item reads (several with ``distill_cfg.teachers``),
  ``model.run_teacher``: converted to that teacher's normalisation (``model.teacher_inputs``), the
  adapter's ``model.teacher_step`` inside ``model.running_teacher`` (no grad, the teacher's
  autocast), all inside ``model.distiller.step()`` (the teachers' taps record). Only what the
  step runs: e.g. mmseg items reading backbone stages only do not run the teacher's decode head;
- ``distill_step_s``: the distillation step, ``model.train_step`` with the run's optimizer
  wrapper (``runner.optim_wrapper``): preprocessing, student and teacher, connectors, losses,
  monitor, backward, update;
- ``loss_s``: every distill loss's forward + backward on the inputs it received in one
  distillation step (captured by forward pre-hooks; connectors, readouts and taps are part of the
  step, not of the loss).

``step_ratio = distill_step_s / (student_step_s + teacher_forward_s)``: the distillation step
against what it cannot avoid, the student's own step and the teacher's part (1: distilling adds
nothing); ``loss_share = loss_s / distill_step_s``. ``load_per_core`` (the 1-minute load
average over the CPU count, read after the timing) says whether other work shared the machine:
the run itself adds about ``torch.get_num_threads() / cpu count``; well above 1 means the times
are inflated.

Both timed steps update the weights for real (the student step with its own freshly built
optimizer, the distillation step with the run's): :func:`step_costs` is called after a run's
training and validation, and nothing recorded or saved after it reads the weights (the matrix
writes the row from the run's result; the checkpoints were saved during training), or on
freshly built models whose weights do not matter (``kdzoo plug-and-play --retime``).
"""
import copy
import os
import platform
import statistics
import time

from kdzoo.wrappers import unwrap


def bf16_autocast(device):
    import torch
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def synchronize(device):
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def timed(fn, repeats, device):
    """Median seconds of ``fn()`` over ``repeats`` runs after 2 warm-up runs."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def captured_loss_calls(model, data, optim_wrapper):
    """Run one distillation step and return ``[(loss module, args, kwargs)]`` of every loss call."""
    calls, handles = [], []
    for loss in model.distiller.losses.values():
        handles.append(loss.register_forward_pre_hook(
            lambda module, args, kwargs: calls.append((module, args, kwargs)), with_kwargs=True))
    try:
        model.train_step(data, optim_wrapper)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def loss_pass(calls):
    """Forward + backward of every captured loss call on fresh leaf copies of its student input
    (the checks a loss adds go to a fresh ``PendingChecks``, read once here, as the step does)."""
    from kdzoo.finite import PendingChecks
    checks, total = PendingChecks(), 0
    for module, (student, teacher, *rest), kwargs in calls:
        kwargs = dict(kwargs, checks=checks) if 'checks' in kwargs else kwargs
        total = total + module(student.detach().requires_grad_(), teacher, *rest, **kwargs)
    total.backward()
    checks.verify()


def student_optim_wrapper(runner, student):
    """An optimizer wrapper built from the run's ``optim_wrapper`` config over ``student``'s
    parameters (its wrapper and optimizer types and every setting, paramwise ones included), in
    the runner's registry scope."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(runner.default_scope.scope_name):
        return build_optim_wrapper(student, copy.deepcopy(runner.cfg.optim_wrapper))


def teacher_step(model, data):
    """A function running the teachers' part of ``model``'s distillation step on ``data`` (see
    the module docstring): its inputs preprocessed once here, as the step's."""
    inputs = model.data_preprocessor(data, True)['inputs']

    def run():
        with model.distiller.step():
            for name in model.distiller.needed:  # every teacher an item reads, once
                model.run_teacher(name, inputs)
    return run


def step_costs(runner, repeats, device):
    """Seconds of the student's own step and, for a distilling model, of the teacher's part of
    the distillation step, the distillation step and the losses (forward + backward), on one
    training batch, with the step ratio and loss share (see the module docstring). The runner's
    optimizer wrapper is built first if it is still a config (a runner that did not train). The
    teacher runs under the model's own ``teacher_autocast`` (bf16 with ``--teacher-bf16``), as in
    its steps."""
    model = unwrap(runner.model)
    model.train()  # validation left it in eval; the distiller keeps the teacher in eval
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    data = next(iter(runner.train_dataloader))
    student = getattr(model, 'student', model)
    student_optim = student_optim_wrapper(runner, student)
    costs = dict(student_step_s=timed(lambda: student.train_step(data, student_optim), repeats,
                                      device))
    if not hasattr(model, 'distiller'):
        return dict(costs, load_per_core=load_per_core())
    costs['teacher_forward_s'] = timed(teacher_step(model, data), repeats, device)
    costs['distill_step_s'] = timed(lambda: model.train_step(data, runner.optim_wrapper), repeats,
                                    device)
    calls = captured_loss_calls(model, data, runner.optim_wrapper)
    costs['loss_s'] = timed(lambda: loss_pass(calls), repeats, device)
    costs['step_ratio'] = costs['distill_step_s'] / (costs['student_step_s']
                                                     + costs['teacher_forward_s'])
    costs['loss_share'] = costs['loss_s'] / costs['distill_step_s']
    return dict(costs, load_per_core=load_per_core())


def load_per_core():
    """The machine's 1-minute load average per CPU."""
    return os.getloadavg()[0] / (os.cpu_count() or 1)


def cpu_model():
    """The CPU's model name (Linux's /proc/cpuinfo), else the architecture: float results of the
    same seeded run can differ between CPU models (the kernels chosen differ)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
