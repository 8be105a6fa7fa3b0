"""Hooks that let a test look inside a training run started as a real process (tools/train.py,
tools/dist_train.sh). A config imports this module with ``custom_imports`` and the test puts
tests/tools on the process's ``PYTHONPATH``."""
import os
import time

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ProbeHook(Hook):
    """Write ``<out>/rank<r>.pt`` after training: the model wrapper, whether a teacher parameter
    is wrapped or optimized, every iteration's logged losses and the final model state dict."""

    def __init__(self, out):
        self.out = out
        self.losses = []
        self.info = {}

    def before_train(self, runner):
        model = runner.model
        inner = model.module if is_model_wrapper(model) else model
        wrapped = {id(p) for p in model.parameters()}
        optimized = {id(p) for group in runner.optim_wrapper.optimizer.param_groups
                     for p in group['params']}
        teacher = [id(p) for p in inner.teacher.parameters()]
        self.info = dict(
            wrapper=type(model).__name__, device_ids=getattr(model, 'device_ids', None),
            world_size=runner.world_size, teacher_parameters=len(teacher),
            teacher_wrapped=any(p in wrapped for p in teacher),
            teacher_optimized=any(p in optimized for p in teacher),
            student_optimized=all(id(p) in optimized for p in inner.student.parameters()))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append({key: float(value) for key, value in outputs.items()})

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save(dict(self.info, losses=self.losses, state_dict=model.state_dict()),
                   os.path.join(self.out, f'rank{runner.rank}.pt'))


@HOOKS.register_module()
class StallAfterCheckpointHook(Hook):
    """After the checkpoint of iteration ``iteration`` is written, write the file ``marker`` and
    wait (for the test's SIGKILL). Runs after the CheckpointHook (priority ``LOWEST``) and draws
    nothing from any random stream."""

    priority = 'LOWEST'

    def __init__(self, iteration, marker):
        self.iteration = iteration
        self.marker = marker

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            with open(self.marker, 'w') as f:
                f.write(str(os.getpid()))
            time.sleep(600)


@HOOKS.register_module()
class CrashAfterCheckpointHook(Hook):
    """Raise ``RuntimeError`` after the checkpoint of iteration ``iteration`` is written: a run
    interrupted there, within the test's own process."""

    priority = 'LOWEST'

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            raise RuntimeError(f'stopped after the checkpoint of iteration {self.iteration}')
