"""What the teacher does in the training steps of a run with a teacher-output cache (importable as
``cache_probes``: tests/ is on sys.path; a process a test starts imports it with
``custom_imports`` and tests/ on its ``PYTHONPATH``)."""
import json
import os

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from kdzoo.wrappers import unwrap


@HOOKS.register_module()
class TeacherCallsHook(Hook):
    """Count the calls of every teacher module per training iteration (between
    ``before_train_iter`` and ``after_train_iter``: the teacher check and the cache's size probe,
    before training, are not counted), the iterations started and the stream positions each
    iteration hands the model (``model.stream_keys``, set by the cache's hook, which runs first).

    ``calls``: ``{iteration: calls}`` of all the teachers; ``teacher_calls``: ``{teacher name:
    {iteration: calls}}``; ``started``; ``positions``: one list per iteration. With ``out``,
    after training ``<out>/rank<r>.json`` holds them and the cache's counts."""

    priority = 'LOWEST'

    def __init__(self, out=None):
        self.out = out
        self.calls = {}
        self.teacher_calls = {}
        self.started = 0
        self.positions = []
        self.iteration = None

    def before_train(self, runner):
        for name, teacher in unwrap(runner.model).teachers.items():
            self.teacher_calls[name] = {}
            for module in teacher.modules():
                module.register_forward_pre_hook(
                    lambda module, args, name=name: self.count(name))

    def count(self, name):
        if self.iteration is not None:
            for calls in (self.calls, self.teacher_calls[name]):
                calls[self.iteration] = calls.get(self.iteration, 0) + 1

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iteration = runner.iter
        self.started += 1
        keys = unwrap(runner.model).stream_keys
        self.positions.append(None if keys is None else list(keys[1]))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.iteration = None

    def after_train(self, runner):
        if self.out is None:
            return
        cache = unwrap(runner.model).teacher_caches.get('teacher')
        record = dict(calls=sorted(self.calls), started=self.started, positions=self.positions,
                      counts=None if cache is None else cache.counts)
        with open(os.path.join(self.out, f'rank{runner.rank}.json'), 'w') as f:
            json.dump(record, f)
