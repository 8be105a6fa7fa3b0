"""Run one config for a budget and return its metric curve and timing: the one engine under
``kdzoo compare`` (paired verdicts) and ``kdzoo plug-and-play`` (the matrix).

:func:`train_run` builds the runner exactly as ``kdzoo train`` does (:func:`kdzoo.runner.
build_runner`), with the budget set by :func:`budget_options` (iterations, the config's own
schedule stretched to them, ``evals`` validations spread over the run), and a :class:`RunHook`
that

- loads (or, the first time, saves) the student's initial weights from a file, so the arms of a
  paired comparison start from the same student, and fingerprints them (``init_sha``); the file
  is reused only by runs of the fingerprint it was saved for (:func:`check_init_file`);
- fingerprints the first training batches (``batches_sha``): equal fingerprints in two runs mean
  the same images, augmentations and labels in the same order;
- records the validation metric after every evaluation (the curve), and stops at a wall-time
  budget when one is given.
"""
import hashlib
import json
import math
import os
import os.path as osp
import statistics
import time
from dataclasses import dataclass, field
from itertools import count

import torch
from mmengine.hooks import Hook

from kdzoo.hashing import qualified_name, state_sha, tensor_bytes
from kdzoo.hooks.split_classes import check_checkpoint_classes
from kdzoo.runner import build_runner, load_config
from kdzoo.schedule import is_iteration_based, rescaled_schedule
from kdzoo.teacher_cache import configured_caches
from kdzoo.wrappers import unwrap

RUN_IDS = count()


@dataclass
class RunResult:
    """What one run gives: ``curve`` is ``[(iteration, metric)]`` in the table's units."""
    iters: int
    curve: list
    seconds: float
    iter_s: float
    init_sha: str = ''
    batches_sha: str = ''
    metrics: dict = field(default_factory=dict)

    @property
    def last(self):
        return self.curve[-1][1] if self.curve else math.nan

    @property
    def best(self):
        return max(m for _, m in self.curve) if self.curve else math.nan


def student_of(model):
    """The student of a distilling model, or the model itself."""
    model = unwrap(model)
    return model.student if hasattr(model, 'distiller') else model


NOT_TRAINING = {'num_workers', 'persistent_workers', 'log_level', 'logger'}
# a config's own keys that say how its inputs are made, not what is trained
NOT_TRAINING_KEYS = ('setup_command',)


def resolved_config(config, options, root=None):
    """``config`` as resolved (its ``_base_`` files included) with the cfg-options ``options``
    merged, as a JSON-like dict: what a run is trained with. Options that do not change what is
    trained are left out (a key with a part in :data:`NOT_TRAINING`: the loaders' workers — the
    seeded data stream makes the batches independent of them — and logging), and so are the
    config's keys of :data:`NOT_TRAINING_KEYS` (the command that makes the data and teachers);
    paths under ``root`` count relative to it. A teacher-output cache counts by what it changes
    in the results (:func:`cache_storage`)."""
    cfg = load_config(config, {key: value for key, value in options.items()
                               if not NOT_TRAINING & set(key.split('.'))})  # as a run loads it
    resolved = {key: value for key, value in cfg.to_dict().items()
                if key not in NOT_TRAINING_KEYS}
    text = json.dumps(resolved, sort_keys=True, default=qualified_name)
    if root:
        text = text.replace(osp.abspath(root), '<root>')
    return cache_storage(json.loads(text))


def cache_storage(resolved):
    """``resolved`` with its teachers' caches (``distill_cfg.teacher.cache``,
    ``distill_cfg.teachers.<name>.cache``; top-level, or ``model.distill_cfg`` in the explicit
    form) as they bear on the results: each removed when exact (float32, all classes: a run
    reading it is bit-identical to the live run, so a result is the same with or without it,
    whichever folder), else only its storage, ``dict(dtype, topk)`` (lossy: the results differ
    from live ones; its folder and extra readouts do not change them)."""
    for _, _, teacher, spec in configured_caches(resolved):
        if 'cache' not in teacher:
            continue
        if spec is None or spec.exact:
            del teacher['cache']
        else:
            teacher['cache'] = dict(dtype=spec.dtype, topk=spec.topk)
    return resolved


def config_sha(config, options, root=None):
    """A short fingerprint of :func:`resolved_config` (or of such a dict given as ``config``)."""
    resolved = config if isinstance(config, dict) else resolved_config(config, options, root)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:16]


def tensors_of(value):
    """Every tensor of a data batch, in a fixed order: inputs, and labels / label maps / boxes of
    the data samples (kdzoo's label tensors, mmseg's ``gt_sem_seg``, mmdet's ``gt_instances``)."""
    if torch.is_tensor(value):
        yield value
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from tensors_of(value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors_of(item)
    else:
        for name in ('gt_sem_seg', 'gt_instances'):
            data = getattr(value, name, None)
            if data is not None:
                for key in sorted(data.keys()):
                    yield from tensors_of(getattr(data, key))


def batch_sha(batches):
    digest = hashlib.sha256()
    for tensor in tensors_of(batches):
        tensor = getattr(tensor, 'tensor', tensor)  # mmdet box types
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()[:16]


class RunHook(Hook):
    """See the module docstring. ``metric`` is the validation key, ``scale`` its unit factor."""

    priority = 'HIGH'  # before the teacher check and the loggers

    def __init__(self, metric, scale=1.0, init_file=None, fingerprint_batches=2, seconds=0.0,
                 init_fingerprint=''):
        self.metric, self.scale, self.init_file = metric, scale, init_file
        self.fingerprint_batches, self.seconds = fingerprint_batches, seconds
        self.init_fingerprint = init_fingerprint
        self.curve, self.batches, self.init_sha, self.metrics, self.start = [], [], '', {}, None

    def before_train(self, runner):
        self.start = time.perf_counter()
        student = student_of(runner.model)
        if self.init_file and runner.iter == 0:
            if osp.isfile(self.init_file):
                saved = init_fingerprint(self.init_file)
                if saved != self.init_fingerprint:  # callers check first (check_init_file)
                    raise RuntimeError(f'{self.init_file} was saved for fingerprint {saved!r}, '
                                       f'this run has {self.init_fingerprint!r}')
                student.load_state_dict(torch.load(self.init_file, weights_only=True))
            else:
                os.makedirs(osp.dirname(self.init_file), exist_ok=True)
                with open(init_record(self.init_file), 'w') as f:  # first: no file without it
                    json.dump(dict(fingerprint=self.init_fingerprint), f)
                torch.save(student.state_dict(), self.init_file + '.tmp')
                os.replace(self.init_file + '.tmp', self.init_file)
        self.init_sha = state_sha(student.state_dict())

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if len(self.batches) < self.fingerprint_batches:
            self.batches.append(data_batch)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.seconds and time.perf_counter() - self.start > self.seconds:
            runner.train_loop.stop_training = True

    def after_val_epoch(self, runner, metrics=None):
        self.metrics = dict(metrics or {})
        self.curve.append((runner.iter, metric_value(self.metrics, self.metric, self.scale)))


def init_record(init_file):
    """The file beside a saved initial student that records the fingerprint it was saved for."""
    return osp.splitext(init_file)[0] + '.json'


def init_fingerprint(init_file):
    """The fingerprint an initial student was saved for; ``None`` for one saved before
    fingerprints existed (no record beside it)."""
    record = init_record(init_file)
    if not osp.isfile(record):
        return None
    with open(record) as f:
        return json.load(f).get('fingerprint')


def check_init_file(init_file, fingerprint):
    """Before a run that shares the initial student ``init_file``: ``None`` when it can be
    reused (saved for ``fingerprint``) or does not exist yet; one saved before fingerprints
    existed is moved aside (``*.legacy.pth``, said) and never reused; otherwise the fingerprint
    it was saved for (the caller stops: it is another setup's)."""
    if not osp.isfile(init_file):
        return None
    saved = init_fingerprint(init_file)
    if saved is None:
        stem, number = osp.splitext(init_file)[0], 0
        legacy = f'{stem}.legacy.pth'
        while osp.exists(legacy):
            number += 1
            legacy = f'{stem}.legacy{number}.pth'
        os.replace(init_file, legacy)
        print(f'{init_file} was saved before fingerprints existed: moved to {legacy}, not '
              'reused; this run saves a new one', flush=True)
        return None
    return None if saved == fingerprint else saved


def metric_value(metrics, key, scale=1.0):
    """``metrics[key] * scale``; 0, said, when the validation returned no metrics (mmdet's
    CocoMetric when nothing was detected)."""
    if not metrics:
        print(f'no {key}: the validation returned no metrics (nothing detected?); counted as 0',
              flush=True)
        return 0.0
    if key not in metrics:
        raise KeyError(f'metric {key!r} not in the validation metrics {sorted(metrics)}; pass '
                       'the right key (e.g. --metric)')
    return float(metrics[key]) * scale


def budget_options(cfg, iters=None, evals=1, seed=0, workers=None, verbose=False):
    """cfg-options of one run: ``iters`` (the config's own when ``None``; iteration-based configs
    only) with the schedule rescaled, ``evals`` evenly spaced validations (the last at the end),
    ``seed``, no intermediate checkpoint, quiet logs."""
    options = {'randomness.seed': seed, 'log_level': 'INFO' if verbose else 'WARNING',
               'default_hooks.checkpoint.save_last': False}
    if is_iteration_based(cfg):
        total = iters or cfg.train_cfg.max_iters
        if iters:
            options.update({'train_cfg.max_iters': iters,
                            'param_scheduler': rescaled_schedule(cfg, iters)})
        options.update({'train_cfg.val_interval': math.ceil(total / evals),
                        'train_cfg.val_begin': 1,
                        'default_hooks.checkpoint.interval': -1,
                        'default_hooks.logger.interval': max(1, total // 10)})
    else:
        if iters:
            raise ValueError('--iters needs an iteration-based config (train_cfg.max_iters); '
                             'this one is epoch-based: set train_cfg.max_epochs with --cfg-options')
        options.update({'train_cfg.val_interval': math.ceil(cfg.train_cfg.max_epochs / evals),
                        'default_hooks.checkpoint.interval': -1})
    if workers is not None:
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if loader in cfg:
                options[f'{loader}.num_workers'] = workers
                options[f'{loader}.persistent_workers'] = workers > 0
    return options


def median_iter_s(runner):
    """Median training iteration time (MMEngine's IterTimerHook, data loading included), the first
    tenth of the iterations left out as warm-up."""
    times = list(runner.message_hub.get_scalar('train/time').data[0]) \
        if 'train/time' in runner.message_hub.log_scalars else []
    return statistics.median(times[len(times) // 10:]) if times else math.nan


def make_runner(config, work_dir, options, student_only=False, amp=False):
    """``kdzoo train``'s runner. Each gets its own experiment name: MMEngine names it after the
    config and the second, and runners of one name share one message hub (and its metrics)."""
    name = f'{osp.splitext(osp.basename(config))[0]}_{os.getpid()}_{next(RUN_IDS)}'
    return build_runner(config, cfg_options=dict(options, experiment_name=name),
                        work_dir=work_dir, amp=amp, student_only=student_only)


def train_run(config, work_dir, options, metric, scale=1.0, student_only=False, init_file=None,
              seconds=0.0, amp=False, runner_hook=None, init_fingerprint=''):
    """Train ``config`` with ``options``; returns ``(runner, RunResult)``.

    ``student_only``: the config without its ``distill_cfg`` (the student alone).
    ``init_file``: the student's initial weights, loaded when the file exists, else saved there
    with ``init_fingerprint`` recorded beside it (:func:`check_init_file`).
    ``seconds``: also stop after this wall time, then validate. ``runner_hook(runner)``: called
    after the runner is built (e.g. to wrap the teacher's forward).
    """
    runner = make_runner(config, work_dir, options, student_only, amp)
    hook = RunHook(metric, scale, init_file, seconds=seconds, init_fingerprint=init_fingerprint)
    runner.register_hook(hook)
    if runner_hook:
        runner_hook(runner)
    start = time.perf_counter()
    runner.train()
    if not hook.curve or hook.curve[-1][0] != runner.iter:  # stopped early by the budget
        runner.val_loop.run()
    result = RunResult(iters=runner.iter, curve=hook.curve, seconds=time.perf_counter() - start,
                       iter_s=median_iter_s(runner), init_sha=hook.init_sha,
                       batches_sha=batch_sha(hook.batches), metrics=hook.metrics)
    return runner, result


def teacher_metrics(config, work_dir, options, metric, scale=1.0, names=None):
    """Each teacher's validation metric, as ``(name, value)`` yielded as it is measured: the
    distilling config's val loop run on teacher ``name`` (as :class:`kdzoo.hooks.TeacherCheckHook`
    does before training), for the teachers ``names`` (default: every teacher, in the config's
    order; ``'teacher'`` is the one teacher of ``distill_cfg.teacher``). One runner for all."""
    runner = make_runner(config, work_dir, options)
    check_checkpoint_classes(runner)  # a teacher of other classes stops before its row is written
    model = unwrap(runner.model)
    for name in model.teachers if names is None else names:
        with model.predicting_with_teacher(name):
            metrics = runner.val()
        yield name, metric_value(metrics, metric, scale)
