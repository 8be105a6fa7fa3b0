"""Step costs of a distillation run, measured in the run's own process on one training batch.

The median of ``repeats`` timed repetitions (CUDA synchronised) of the student's own training
step, the teacher's no-grad forward and the distillation step; and of every loss's forward +
backward on the inputs it received in that step (the connectors count as part of the step, not
of the loss). ``step_ratio = distill step / (student step + teacher forward)``, ``loss_share =
losses / distill step``. ``load_per_core`` (the 1-minute load average over the CPU count, read
after the timing) says whether other work shared the machine: the run itself adds about
``torch.get_num_threads() / cpu count``; well above 1 means the times are inflated.
"""
import os
import platform
import statistics
import time
from contextlib import nullcontext

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
    """Forward + backward of every captured loss call on fresh leaf copies of its student input."""
    total = 0
    for module, (student, teacher, *rest), kwargs in calls:
        total = total + module(student.detach().requires_grad_(), teacher, *rest, **kwargs)
    total.backward()


def step_costs(runner, repeats, device, teacher_bf16):
    """Seconds of the student's own step, and for a distilling model the teacher's no-grad forward,
    the distillation step and the losses (forward + backward) on one training batch."""
    import torch
    from mmengine.optim import OptimWrapper
    model = unwrap(runner.model)
    data = next(iter(runner.train_dataloader))
    student = getattr(model, 'student', model)
    student_optim = OptimWrapper(torch.optim.SGD(student.parameters(), lr=0.0))
    costs = dict(student_step_s=timed(lambda: student.train_step(data, student_optim), repeats,
                                      device))
    if not hasattr(model, 'distiller'):
        return dict(costs, load_per_core=load_per_core())
    teacher = model.teacher
    teacher_data = teacher.data_preprocessor(data, True)  # training: pads like the step

    def teacher_forward():
        with torch.no_grad(), (bf16_autocast(device) if teacher_bf16 else nullcontext()):
            teacher(**teacher_data, mode='tensor')
    costs['teacher_forward_s'] = timed(teacher_forward, repeats, device)
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
