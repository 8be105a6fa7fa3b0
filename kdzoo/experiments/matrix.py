"""The plug-and-play matrix: task x heterogeneous pair x loss x seed on generated data.

A profile (``configs/plug_and_play/profiles/<name>.py``, data: see ``gpu.py`` there; why the CPU
profile's numbers are what they are: docs/results.md) says what a run trains. For every task
(its entry in the profile, resolved once into a :class:`MatrixTask`):

1. writes the task's generated data set once (``<out>/tmp/data/<task>``, :mod:`kdzoo.toydata`;
   no download);
2. trains each pair's teacher once on it (teacher iterations, seed 0), cached in
   ``<out>/tmp/teachers/<task>/<pair>_<iters>it/`` with its validation metric (and, with
   ``teacher_bf16``, its metric under bf16 autocast), the fingerprint of its resolved config
   and options and the sha256 of its checkpoint's bytes (a change that alters training, a
   checkpoint changed on disk, or a cache written before these were recorded trains it again;
   workers and logging do not), so the table is self-contained;
3. trains the student alone (loss ``none``) and distilled with each loss, same iterations
   (the profile's per task or per pair, or stopped at ``budget_s`` seconds, then validated),
   paired within a seed: the same initial student weights and the same augmented batches in the
   same order; each loss's items are those of a shipped config fitted to the pair
   (:mod:`.recipes`);
4. measures the step cost in the same process, right after training, on one training batch
   (:mod:`.timing`; the row's ``timed`` says ``after training``).

The distilled arms of a (pair, seed) share one teacher-output cache (:mod:`kdzoo.teacher_cache`;
on unless ``teacher_cache=False``, ``--no-teacher-cache``): the first stores the teacher's
readouts that any of them reads, the others read them and never run the teacher in their
training steps. It is exact (float32, all classes), so a row is bit-identical to the live one and
keeps its fingerprint (:func:`kdzoo.experiments.runs.cache_storage`). Its folder
(:func:`teacher_cache_of`) is keyed by everything its contents depend on besides what the
manifest checks, so another teacher, readout set, precision, batch or device never shares it.
The step costs of such an arm are measured on a freshly built model of its config without the
cache (the teacher's checkpoint loaded): the live step, whose teacher computes only what the
arm's own items read.

Every finished run adds one row to ``<out>/plug_and_play.csv`` at once, the file replaced whole
and each row checksummed (:mod:`.rows`; a row cut off or edited is named, removed and run
again; columns: :data:`.matrix_report.COLUMNS`). Each row carries the fingerprint of what
produced it (:func:`row_fingerprint`: the student run's resolved config and options, what
trained the teacher, the generated data's sizes, the metric and the budget). A rerun skips the
rows already there with the same key (task, pair, loss, seed, budget, teacher iterations and
precision) and the same fingerprint, so the matrix can be finished over several sessions; a row
of the same key made otherwise stops the run before training, naming what differs (give a new
``--out``); rows written before fingerprints existed are legacy: reported as such, never reused
(their runs are done again beside them). A lock file (``<out>/tmp/.plug_and_play.lock``) keeps a
second run off the same ``out``. After every row the report (:mod:`.matrix_report`) is
rewritten from the whole CSV. :func:`relabel` rewrites the model labels of an existing CSV from
the pairs' configs (:mod:`.labels`); :func:`retime` measures the step costs of an existing CSV's
rows again, on freshly built models of their configs, every other field as it is.
"""
import dataclasses
import json
import os
import os.path as osp
import shutil
import time
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import SimpleNamespace

import torch
from mmengine.config import Config

from kdzoo import tasks as task_registry
from kdzoo.configs import ROOT
from kdzoo.experiments.fingerprint import Fingerprint, flat, legacy, refusal
from kdzoo.experiments.labels import config_label
from kdzoo.experiments.matrix_report import (
    AFTER_TRAINING,
    CACHED_RUN,
    COLUMNS,
    CSV_NAME,
    PLAN_NAME,
    RETIMED,
    STEP_COLUMNS,
    key_of,
    read_plan,
    write_report,
)
from kdzoo.experiments.recipes import recipe
from kdzoo.experiments.rows import (
    append_row,
    check_csv,
    fmt,
    number,
    read_header,
    read_rows,
    repair_rows,
    rewrite_rows,
)
from kdzoo.experiments.runs import (
    budget_options,
    check_init_file,
    config_sha,
    make_runner,
    metric_value,
    resolved_config,
    train_run,
    unwrap,
)
from kdzoo.experiments.timing import bf16_autocast, cpu_model, step_costs
from kdzoo.hashing import file_sha, qualified_name, text_sha
from kdzoo.toydata import make_cls_data, make_det_data, make_seg_data

PROFILES_DIR = osp.join(ROOT, 'configs', 'plug_and_play', 'profiles')
LOCK_NAME = '.plug_and_play.lock'  # in <out>/tmp (scratch, git-ignored)
PROFILE_KEYS = ('out', 'device', 'timing_repeats', 'smoke', 'skip_unavailable', 'tasks')


# ----------------------------------------------------------------------------------- the tasks
@dataclass(frozen=True)
class MatrixTask:
    """One row group of the matrix, as a profile resolves it (the one lookup of every task
    setting). ``pairs``: name -> (teacher config, student config), relative to
    :data:`kdzoo.configs.ROOT` (``configs/...``: the checkout's, or the installed package's);
    ``losses``: name -> the shipped config whose distill items the loss borrows; ``metric``: the
    key in the val metrics, ``scale`` its factor to the table's units (``None``: the task
    descriptor's, :mod:`kdzoo.tasks`); ``make_data(root, size)`` writes the set and returns the
    cfg-options pointing the configs at it; ``iters``: (student, teacher) iterations,
    ``student_iters`` / ``teacher_iters`` per pair where they differ; ``run_losses``: those a run
    trains (``None``: all); ``batch``: the training batch (``None``: the config's)."""
    make_data: callable
    pairs: dict
    losses: dict
    data: dict
    iters: tuple
    seeds: int = 2
    metric: str = None
    scale: float = None
    run_losses: tuple = None
    student_iters: dict = field(default_factory=dict)
    teacher_iters: dict = field(default_factory=dict)
    batch: int = None


# What a profile does not say: the data writer of each task (the adapter, its metric and scale
# come from the task's descriptor, kdzoo.tasks).
DATA_WRITERS = {'cls': make_cls_data, 'seg': make_seg_data, 'det': make_det_data}


def profile_names():
    return sorted(osp.splitext(f)[0] for f in os.listdir(PROFILES_DIR)
                  if f.endswith('.py') and not f.startswith('_'))


def load_profile(profile):
    """A profile's settings as a dict, its ``tasks`` resolved into :class:`MatrixTask`;
    ``profile``: a name in ``configs/plug_and_play/profiles`` or a path to such a file."""
    path = profile if profile.endswith('.py') else osp.join(PROFILES_DIR, f'{profile}.py')
    if not osp.isfile(path):
        raise SystemExit(f'profile {profile!r}: no {path}; choose from {profile_names()} or '
                         'give the path of a profile file')
    settings = Config.fromfile(path).to_dict()
    missing = [k for k in PROFILE_KEYS if k not in settings]
    if missing:
        raise SystemExit(f'profile {profile!r} lacks the settings {missing}; base it on the '
                         "GPU profile (_base_ = 'kdzoo::plug_and_play/profiles/gpu.py') and "
                         'change what differs')
    tasks = {}
    for task, entry in settings['tasks'].items():
        if task not in DATA_WRITERS:
            raise SystemExit(f'profile {profile!r}: unknown task {task!r}; the matrix knows '
                             f'{list(DATA_WRITERS)}')
        unknown = set(entry) - {f.name for f in dataclasses.fields(MatrixTask)}
        if unknown:
            raise SystemExit(f'profile {profile!r}, task {task!r}: unknown settings '
                             f'{sorted(unknown)}; see configs/plug_and_play/profiles/gpu.py')
        tasks[task] = MatrixTask(**dict(make_data=DATA_WRITERS[task], **entry))
    return dict(settings, tasks=tasks)


def adapter_error(task):
    """``None`` when the adapter of ``task`` imports here, else the reason."""
    try:
        task_registry.import_adapter(task)
    except Exception as err:  # ModuleNotFoundError, or mmcv without its compiled ops, ...
        return f'{type(err).__name__}: {err}'
    return None


# --------------------------------------------------------------------------------- stage probes
class PairProbe:
    """The ``p`` given to the loss builders (:func:`kdzoo.experiments.recipes.recipe`): the
    classes, the iterations and, probed when a builder first asks for them, ``student`` /
    ``teacher``, the ``(C, H, W)`` of stage1..4 of each model (the task descriptor's
    ``stage_shapes``; only connectors fitted to stages ask, so a pair whose losses need none is
    never probed)."""

    def __init__(self, task, configs, iters):
        self.task = task_registry.get(task)
        self.teacher_cfg, self.student_cfg = (Config.fromfile(osp.join(ROOT, c)).model
                                              for c in configs)
        self.num_classes = self.student_cfg.get('num_classes')
        self.iters = iters

    @cached_property
    def student(self):
        return self.task.stage_shapes(self.student_cfg)

    @cached_property
    def teacher(self):
        return self.task.stage_shapes(self.teacher_cfg)


@lru_cache(maxsize=None)
def probe_pair(task, configs, iters):
    """The probed pair of ``configs`` (teacher, student), one per (task, configs, iterations)."""
    return PairProbe(task, configs, iters)


def recipe_of(entry, loss, p):
    """The distill items of ``loss`` for the probed pair ``p`` (see ``recipes.recipe``)."""
    return recipe(osp.join(ROOT, entry.losses[loss]), p)


# ------------------------------------------------------------------------------------ options
def resolve(profile='gpu', tasks=None, pairs=None, losses=None, seeds=None, iters=None,
            teacher_iters=None, budget_s=0.0, out=None, device=None, teacher_bf16=False,
            batch=None, workers=None, timing_repeats=None, max_wall_s=0.0, verbose=False,
            teacher_cache=True):
    """The options of a matrix run: the profile's, with the given ones (lists of names, or
    numbers; ``None``: the profile's) in their place; ``teacher_cache``: the distilled arms of a
    (pair, seed) share a teacher-output cache."""
    settings = load_profile(profile)
    task_cfg = settings['tasks']
    if tasks is None:
        tasks = [t for t in task_cfg if not settings['skip_unavailable']
                 or adapter_error(t) is None]
    tasks = parse_list(tasks, task_cfg, 'tasks')
    for task in tasks:
        error = adapter_error(task)
        if error:
            raise SystemExit(f'task {task!r}: adapter not available: {error}')
        entry, described = task_cfg[task], task_registry.get(task)
        task_cfg[task] = dataclasses.replace(
            entry, metric=entry.metric or described.metric,
            scale=described.metric_scale if entry.scale is None else entry.scale)
    pairs = parse_list(pairs, [p for t in task_cfg.values() for p in t.pairs], 'pairs')
    all_losses = ['none'] + list(dict.fromkeys(n for t in task_cfg.values() for n in t.losses))
    chosen = parse_list(losses, all_losses, 'losses')
    run_losses = {}
    for t, entry in task_cfg.items():
        names = chosen or entry.run_losses or list(entry.losses)
        run_losses[t] = ['none'] + [n for n in names if n != 'none' and n in entry.losses]
    device = device or settings['device'] or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA GPU is visible')
    return SimpleNamespace(
        profile=osp.splitext(osp.basename(profile))[0], smoke=settings['smoke'], task=task_cfg,
        tasks=tasks, pairs=pairs, losses=run_losses,
        seeds={t: seeds or task_cfg[t].seeds for t in task_cfg},
        iters=iters, teacher_iters=teacher_iters, budget_s=budget_s,
        out=osp.abspath(out or settings['out']), device=device,
        teacher_bf16=teacher_bf16, max_wall_s=max_wall_s, verbose=verbose,
        teacher_cache=teacher_cache,
        batch={t: batch or task_cfg[t].batch for t in task_cfg},
        workers=workers if workers is not None else (8 if device == 'cuda' else 0),
        timing_repeats=timing_repeats or settings['timing_repeats'],
        device_name=device_name(device))


def parse_list(names, allowed, what):
    """``names`` (a comma-separated string or a list) checked against ``allowed``, spelt as
    there (case-insensitive); ``None`` stays ``None``."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [n.strip() for n in names.split(',') if n.strip()]
    lookup = {a.lower(): a for a in allowed}
    unknown = [n for n in names if n.lower() not in lookup]
    if unknown:
        raise SystemExit(f'unknown {what} {unknown}; choose from {list(allowed)}')
    return [lookup[n.lower()] for n in names]


def device_name(device):
    if device == 'cuda':
        return torch.cuda.get_device_name()
    return f'cpu ({cpu_model()}, {torch.get_num_threads()} threads)'


def iters_of(opts, task, pair, role):
    """The iterations of ``pair``'s ``role`` ('student' or 'teacher'): the given ``iters`` /
    ``teacher_iters``, else the profile's (per pair where it says so)."""
    teacher = role == 'teacher'
    given = opts.teacher_iters if teacher else opts.iters
    if given:
        return given
    entry = opts.task[task]
    per_pair = entry.teacher_iters if teacher else entry.student_iters
    return per_pair.get(pair, entry.iters[int(teacher)])


def budget_of(opts, task, pair):
    """The budget of the pair's student runs, as the CSV and the report name it: ``500it``, or
    ``500it/60s`` with ``budget_s``."""
    return (f'{iters_of(opts, task, pair, "student")}it'
            + (f'/{opts.budget_s:g}s' if opts.budget_s else ''))


def run_options(opts, task, config, iters, seed):
    """cfg-options of one run of ``task``: the engine's budget (iterations, rescaled schedule,
    one final evaluation, seed), the loaders' workers and the task's training batch."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    options = budget_options(cfg, iters, 1, seed, opts.workers, opts.verbose)
    if opts.batch[task]:
        options['train_dataloader.batch_size'] = opts.batch[task]
    return options


def teacher_in_bf16(runner):
    """A ``train_run`` runner hook: the distilling model runs its teacher under bf16 autocast
    (the losses still compute in float32)."""
    model = unwrap(runner.model)
    if not hasattr(model, 'teacher_autocast'):
        raise TypeError(f'{type(model).__name__} has no teacher_autocast attribute: this model '
                        'cannot run its teacher under bf16 autocast (drop --teacher-bf16)')
    model.teacher_autocast = torch.bfloat16


# --------------------------------------------------------------------------------- the matrix
def prepare_data(opts, task):
    """Write the task's set once (a ``done.json`` marks a finished one); returns its cfg-options."""
    entry = opts.task[task]
    root = osp.join(opts.out, 'tmp', 'data', task + ('_smoke' if opts.smoke else ''))
    marker = osp.join(root, 'done.json')
    if osp.isfile(marker):
        with open(marker) as f:
            done = json.load(f)
        if done['size'] == json.loads(json.dumps(entry.data)):
            return done['options']
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    options = entry.make_data(root, entry.data)
    with open(marker, 'w') as f:
        json.dump(dict(size=entry.data, options=options), f)
    print(f'[{task}] data {entry.data} written to {root} in {time.perf_counter() - start:.0f} s',
          flush=True)
    return options


def teacher_options(opts, task, pair, configs):
    """cfg-options of the pair's teacher run, the data's left out (its last checkpoint kept)."""
    iters = iters_of(opts, task, pair, 'teacher')
    options = run_options(opts, task, configs[0], iters, 0)
    options.update({'default_hooks.checkpoint.interval': iters,
                    'default_hooks.checkpoint.save_last': True})
    return options


def teacher_run(opts, task, pair, configs, data_options):
    """Train (or read from the cache) the pair's teacher; returns its record: checkpoint, metric,
    and with ``teacher_bf16`` its metric under bf16 autocast."""
    entry, iters = opts.task[task], iters_of(opts, task, pair, 'teacher')
    config = osp.join(ROOT, configs[0])
    folder = osp.join(opts.out, 'tmp', 'teachers', task, f'{pair}_{iters}it')
    record_path = osp.join(folder, 'teacher.json')
    options = dict(data_options, **teacher_options(opts, task, pair, configs))
    trained_with = config_sha(config, options, root=opts.out)
    record = None
    if osp.isfile(record_path):
        with open(record_path) as f:
            record = json.load(f)
        checkpoint = record['checkpoint']
        if 'config_sha' not in record:
            print(f'[{task}/{pair}] the cached teacher in {folder} was written before its config '
                  'was recorded: not reused, training it again', flush=True)
            record = None
        elif record['config_sha'] != trained_with:
            print(f'[{task}/{pair}] the cached teacher in {folder} was trained with another '
                  f'config or options than {configs[0]} has now: training it again', flush=True)
            record = None
        elif not record.get('checkpoint_sha'):
            print(f'[{task}/{pair}] the cached teacher in {folder} was written before its '
                  'checkpoint\'s bytes were recorded: not reused, training it again', flush=True)
            record = None
        elif osp.isfile(checkpoint) and record['checkpoint_sha'] != file_sha(checkpoint):
            print(f'[{task}/{pair}] the cached teacher checkpoint {checkpoint} has other '
                  'bytes than when it was trained: training it again', flush=True)
            record = None
    if record is None or not osp.isfile(record['checkpoint']):
        print(f'[{task}/{pair}] teacher {configs[0]}: {iters} iterations', flush=True)
        runner, result = train_run(config, folder, options, entry.metric, entry.scale)
        checkpoint = osp.join(folder, f'iter_{runner.iter}.pth')
        if not osp.isfile(checkpoint):
            raise RuntimeError(f'[{task}/{pair}] the teacher trained in {folder} left no '
                               f'checkpoint {checkpoint} (its config must keep '
                               'default_hooks.checkpoint saving the last iteration)')
        record = dict(checkpoint=checkpoint, metric=result.last, seconds=result.seconds,
                      iters=runner.iter, metric_bf16=None, config_sha=trained_with,
                      checkpoint_sha=file_sha(checkpoint))
    if opts.teacher_bf16 and record['metric_bf16'] is None:
        runner = make_runner(config, folder, dict(
            data_options, **run_options(opts, task, configs[0], 1, 0),
            load_from=record['checkpoint']))
        runner.load_or_resume()
        with bf16_autocast(opts.device):
            record['metric_bf16'] = metric_value(runner.val_loop.run(), entry.metric,
                                                 entry.scale)
    with open(record_path, 'w') as f:
        json.dump(record, f, indent=1)
    print(f'[{task}/{pair}] teacher {entry.metric} = {record["metric"]:.2f}'
          + (f', under bf16 autocast {record["metric_bf16"]:.2f}' if opts.teacher_bf16 else ''),
          flush=True)
    return record


def student_options(opts, task, pair, configs, loss, seed):
    """cfg-options of a student run (alone for ``loss='none'``), the data's and the teacher
    checkpoint's left out: those the run adds (:func:`student_run`); the fingerprint hashes the
    rest."""
    entry = opts.task[task]
    iters = iters_of(opts, task, pair, 'student')
    options = run_options(opts, task, configs[1], iters, seed)
    if loss != 'none':
        items = recipe_of(entry, loss, probe_pair(task, tuple(configs), iters))
        options['distill_cfg'] = dict(teacher=dict(config=osp.join(ROOT, configs[0])),
                                      teacher_check=False, **items)
    return options


def row_fingerprint(opts, task, pair, configs, loss, seed):
    """The :class:`~kdzoo.experiments.fingerprint.Fingerprint` of a row: ``config``, the student
    run's resolved config and options; ``teacher``, the fingerprint of the teacher's resolved
    config and options (what trains it; ``none`` for the student alone); ``data``, the task's
    generated data sizes; ``metric`` and ``budget``."""
    entry = opts.task[task]
    options = student_options(opts, task, pair, configs, loss, seed)
    resolved = resolved_config(osp.join(ROOT, configs[1]), options, root=ROOT)
    teacher = 'none' if loss == 'none' else config_sha(
        osp.join(ROOT, configs[0]), teacher_options(opts, task, pair, configs), root=ROOT)
    parts = dict(config=config_sha(resolved, None), teacher=teacher,
                 data=text_sha(json.dumps([task, entry.data], sort_keys=True)),
                 metric=f'{entry.metric}*{entry.scale:g}', budget=budget_of(opts, task, pair))
    options = json.loads(json.dumps(options, sort_keys=True, default=qualified_name))
    return Fingerprint(parts, flat(options), flat(resolved))


def init_fingerprint(configs, seed):
    """What the pair's initial student of ``seed`` depends on: the student config and the seed
    (every loss and budget of the pair shares it)."""
    return config_sha(osp.join(ROOT, configs[1]), {'randomness.seed': seed}, root=ROOT)


def student_run(opts, task, pair, configs, loss, seed, data_options, teacher):
    """Train the student alone (``loss='none'``) or distilled; returns the row's measured fields.
    Every run of a (pair, seed) starts from the same student (one initial-weights file) and sees
    the same batches (the seeded data stream), whatever its loss."""
    entry = opts.task[task]
    options = dict(data_options, **student_options(opts, task, pair, configs, loss, seed))
    distilled = loss != 'none'
    # a wall-time budget would give the arms reading the cache more iterations than live ones
    cached = distilled and opts.teacher_cache and not opts.budget_s
    if distilled:
        options['distill_cfg']['teacher']['checkpoint'] = teacher['checkpoint']
        if cached:
            options['distill_cfg']['teacher']['cache'] = teacher_cache_of(
                opts, task, pair, configs, seed, teacher)
    runs = osp.join(opts.out, 'tmp', 'runs', task, pair)  # one initial student per seed
    init_file = osp.join(runs, f'seed{seed}_student_init.pth')
    saved_for = check_init_file(init_file, init_fingerprint(configs, seed))
    if saved_for:
        raise SystemExit(f'plug-and-play: {init_file} was saved for another student config '
                         f'(fingerprint {saved_for}); it is never reused for another: give this '
                         'run a new --out')
    work_dir = osp.join(runs, budget_of(opts, task, pair).replace('/', '_'), f'{loss}_seed{seed}')
    runner, result = train_run(
        osp.join(ROOT, configs[1]), work_dir, options, entry.metric, entry.scale,
        init_file=init_file, seconds=opts.budget_s,
        runner_hook=teacher_in_bf16 if opts.teacher_bf16 and distilled else None,
        init_fingerprint=init_fingerprint(configs, seed))
    fields = dict(iters=result.iters, metric=result.last, train_s=result.seconds,
                  iter_s=result.iter_s, init_sha=result.init_sha, batches_sha=result.batches_sha)
    timed = AFTER_TRAINING
    if cached:  # the live step (see the module docstring)
        runner = make_runner(osp.join(ROOT, configs[1]), osp.join(work_dir, 'timing'),
                             without_cache(options))
        if opts.teacher_bf16:
            teacher_in_bf16(runner)
        timed = CACHED_RUN
    fields.update(step_costs(runner, opts.timing_repeats, opts.device), timed=timed)
    return fields


def teacher_taps(opts, task, pair, configs):
    """The teacher taps the items of the pair's distilled arms in this run read, sorted: what
    their shared teacher-output cache stores (``distill_cfg.teacher.cache.readouts``)."""
    entry = opts.task[task]
    p = probe_pair(task, tuple(configs), iters_of(opts, task, pair, 'student'))
    taps = set()
    for loss in opts.losses[task]:
        if loss != 'none':
            for item in recipe_of(entry, loss, p)['losses']:
                taps.update([item['teacher']] if isinstance(item['teacher'], str)
                            else item['teacher'])
    return sorted(taps)


def teacher_cache_of(opts, task, pair, configs, seed, teacher):
    """``distill_cfg.teacher.cache`` of the distilled arms of (pair, ``seed``), float32:
    ``<out>/tmp/teacher_cache/<task>/<pair>_<teacher iters>it/<key>/seed<seed>``, ``key`` a hash
    of the teacher checkpoint's bytes (``teacher``: its record), the taps stored, the teacher's
    precision, the training batch, the device and the data's size."""
    readouts = teacher_taps(opts, task, pair, configs)
    batch = opts.batch[task] or Config.fromfile(
        osp.join(ROOT, configs[1])).train_dataloader.batch_size
    key = text_sha(json.dumps(dict(
        teacher=teacher['checkpoint_sha'], readouts=readouts, batch=batch, device=opts.device,
        teacher_dtype='bf16' if opts.teacher_bf16 else 'fp32', data=opts.task[task].data),
        sort_keys=True))
    folder = osp.join(opts.out, 'tmp', 'teacher_cache', task,
                      f'{pair}_{iters_of(opts, task, pair, "teacher")}it', key, f'seed{seed}')
    return dict(dir=folder, readouts=readouts)


def without_cache(options):
    """A student run's ``options`` without its teacher-output cache."""
    teacher = {k: v for k, v in options['distill_cfg']['teacher'].items() if k != 'cache'}
    return dict(options, distill_cfg=dict(options['distill_cfg'], teacher=teacher))


def chosen_pairs(opts, task):
    """The task's pairs this run covers: all, or those named in ``opts.pairs``."""
    return {name: configs for name, configs in opts.task[task].pairs.items()
            if not opts.pairs or name in opts.pairs}


def write_plan(opts):
    """``plug_and_play_plan.json``: every row the profile asks for, so the report can show the
    rows not run yet (the CSV holds the finished ones only). A sitting run with some tasks /
    pairs replaces its own (task, pair) entries and keeps the others an earlier sitting of the
    same profile planned: the report still shows them, run or not."""
    old = read_plan(opts.out) or {}
    earlier = (old['rows'] if (old.get('profile'), old.get('smoke', False))
               == (opts.profile, opts.smoke) else [])
    plan = [dict(task=task, pair=pair, teacher=teacher, student=student,
                 losses=opts.losses[task], seeds=opts.seeds[task],
                 budget=budget_of(opts, task, pair), iters=iters_of(opts, task, pair, 'student'),
                 teacher_iters=iters_of(opts, task, pair, 'teacher'),
                 teacher_dtype='bf16' if opts.teacher_bf16 else 'fp32')
            for task in opts.tasks for pair, (teacher, student) in chosen_pairs(opts, task).items()]
    planned = {(e['task'], e['pair']): e for e in earlier}
    planned.update({(e['task'], e['pair']): e for e in plan})
    with open(osp.join(opts.out, PLAN_NAME), 'w') as f:
        json.dump(dict(profile=opts.profile, smoke=opts.smoke, device=opts.device_name,
                       rows=list(planned.values())), f, indent=1)


def planned_rows(opts):
    """Every row this run covers, in running order: ``[(key, row fields, configs)]``."""
    planned = []
    for task in opts.tasks:
        for pair, configs in chosen_pairs(opts, task).items():
            for seed in range(opts.seeds[task]):
                for loss in opts.losses[task]:
                    row = dict(task=task, pair=pair, loss=loss, seed=seed,
                               budget=budget_of(opts, task, pair),
                               teacher_iters='-' if loss == 'none'
                               else iters_of(opts, task, pair, 'teacher'),
                               teacher_dtype='-' if loss == 'none' else
                               ('bf16' if opts.teacher_bf16 else 'fp32'))
                    planned.append((key_of(row), row, configs))
    return planned


def reusable_rows(opts, csv_path, planned, fingerprint):
    """The CSV's rows this run reuses, by key: those of a planned key with the fingerprint it
    would have now (``fingerprint(key)``); legacy rows (no fingerprint) are not reused. Stops
    (``SystemExit``, before anything is trained) when a planned key's row was made otherwise."""
    keys = {key for key, _, _ in planned}
    done, other = {}, []
    for row in read_rows(csv_path):
        key = key_of(row)
        if legacy(row) or key not in keys:
            continue
        now = fingerprint(key)
        if row['fingerprint'] == now.value:
            done[key] = row
        else:
            other.append((row, now))
    if other:
        raise SystemExit(refusal('plug-and-play', opts.out, csv_path, [r for r, _ in other],
                                 other[0][1], '--out', records=osp.join(opts.out, 'tmp')))
    return done


def run_matrix(opts):
    """Run every missing row; returns ``dict(done=[keys], skipped=[keys])``."""
    csv_path = osp.join(opts.out, CSV_NAME)
    check_csv(csv_path, COLUMNS, 'plug-and-play', '--out')
    repair_rows(csv_path)
    planned = planned_rows(opts)
    fingerprints = {}

    def fingerprint(key):
        if key not in fingerprints:
            _, row, configs = next(p for p in planned if p[0] == key)
            fingerprints[key] = row_fingerprint(opts, row['task'], row['pair'], configs,
                                                row['loss'], row['seed'])
        return fingerprints[key]

    done = reusable_rows(opts, csv_path, planned, fingerprint)
    summary = dict(done=[], skipped=[])
    start = time.perf_counter()
    longest = 0.0
    data_options, teachers = {}, {}
    for key, row, configs in planned:
        task, pair, loss, seed = row['task'], row['pair'], row['loss'], row['seed']
        entry = opts.task[task]
        if key in done:
            print(f'skipped (already in the CSV): {" ".join(key)}', flush=True)
            summary['skipped'].append(key)
            continue
        elapsed = time.perf_counter() - start
        if opts.max_wall_s and elapsed + longest > opts.max_wall_s:
            print(f'stopping: {elapsed:.0f} s used, the next run may pass '
                  f'--max-wall-s {opts.max_wall_s:g}; rerun to continue', flush=True)
            return summary
        run_start = time.perf_counter()
        if task not in data_options:
            data_options[task] = prepare_data(opts, task)
        if (task, pair) not in teachers:
            teachers[task, pair] = teacher_run(opts, task, pair, configs, data_options[task])
        teacher = teachers[task, pair]
        print(f'[{task}/{pair}] {loss}, seed {seed}, {row["budget"]}', flush=True)
        row = dict(row, **student_run(opts, task, pair, configs, loss, seed, data_options[task],
                                      teacher))
        alone = done.get(key_of(dict(row, loss='none', teacher_iters='-', teacher_dtype='-')))
        alone_metric = row['metric'] if loss == 'none' else number(
            alone['metric'] if alone else None)
        made_by = fingerprint(key)
        row.update(teacher=config_label(configs[0], ROOT),
                   student=config_label(configs[1], ROOT),
                   metric_name=entry.metric, teacher_metric=teacher['metric'],
                   teacher_metric_bf16=('' if teacher['metric_bf16'] is None
                                        else teacher['metric_bf16']),
                   student_alone_metric=alone_metric,
                   gain=round(row['metric'] - alone_metric, 6), device=opts.device_name,
                   finished=time.strftime('%Y-%m-%d %H:%M:%S'), fingerprint=made_by.value,
                   fingerprint_parts=made_by.parts_text)
        made_by.save(osp.join(opts.out, 'tmp'))
        append_row(csv_path, COLUMNS, row)
        done[key] = {k: fmt(v) for k, v in row.items()}
        summary['done'].append(key)
        write_report(opts.out)
        longest = max(longest, time.perf_counter() - run_start)
        print(f'  {entry.metric} = {row["metric"]:.2f} (gain {row["gain"]:+.2f}), '
              f'step ratio {row.get("step_ratio", float("nan")):.3f}, loss share '
              f'{row.get("loss_share", float("nan")):.2%}', flush=True)
    return summary


# ---------------------------------------------------------------------------------- migration
def relabel(out, profile):
    """Rewrite the ``teacher`` / ``student`` labels of ``<out>/plug_and_play.csv`` from the
    configs of the profile's pairs (:func:`kdzoo.experiments.labels.config_label`), every other
    field as it is: CSVs written before the labels named the model's type and key options (they
    printed e.g. ``EncoderDecoder/SwinTransformer-``). Idempotent; rows of pairs the profile does
    not know, or whose configs do not load here (an adapter not installed), keep their labels,
    said. Returns the number of rows changed."""
    path = osp.join(out, CSV_NAME)
    rows = read_rows(path)
    if not rows:
        return 0
    pairs = {(task, name): configs for task, entry in load_profile(profile)['tasks'].items()
             for name, configs in entry.pairs.items()}
    labels, changed = {}, 0
    for row in rows:
        configs = pairs.get((row['task'], row['pair']))
        if configs is None:
            continue
        configs = tuple(configs)
        if configs not in labels:
            try:
                labels[configs] = tuple(config_label(c, ROOT) for c in configs)
            except Exception as err:  # e.g. an mmseg:: base without mmseg installed
                print(f'relabel: {row["task"]}/{row["pair"]} keeps its labels (its configs do '
                      f'not load here: {type(err).__name__}: {err})', flush=True)
                labels[configs] = None
        if labels[configs] and (row['teacher'], row['student']) != labels[configs]:
            row['teacher'], row['student'] = labels[configs]
            changed += 1
    if changed:
        rewrite_rows(path, read_header(path), rows)
        print(f'relabel: {changed} row(s) of {path} now name their models by type and options',
              flush=True)
    return changed


# ---------------------------------------------------------------------------------- re-timing
def row_options(opts, row):
    """``opts`` with the budget and teacher iterations ``row`` was run with (its ``budget``,
    ``500it`` or ``500it/60s``, and its ``teacher_iters``)."""
    iters, _, seconds = row['budget'].partition('/')
    return SimpleNamespace(**dict(
        vars(opts), iters=int(iters.removesuffix('it')),
        budget_s=float(seconds.removesuffix('s')) if seconds else 0.0,
        teacher_iters=None if row['teacher_iters'] == '-' else int(row['teacher_iters'])))


def retime_runner(opts, row, configs, data_options):
    """A runner of ``row``'s run (its configs, recipe, budget and seed, the teacher under bf16
    autocast where the row's was) with freshly built models: random weights, the teacher without
    its checkpoint; nothing is trained. Its folder is scratch (``<out>/tmp/retime``)."""
    task, pair, loss = row['task'], row['pair'], row['loss']
    options = dict(data_options, **student_options(opts, task, pair, configs, loss,
                                                   int(row['seed'])))
    name = f'{loss}_{row["teacher_dtype"]}_{row["budget"]}'.replace('/', '_')
    with warnings.catch_warnings():  # the random teacher is the point here
        warnings.filterwarnings('ignore', message='distill_cfg.teacher has no checkpoint')
        runner = make_runner(osp.join(ROOT, configs[1]), osp.join(opts.out, 'tmp', 'retime', task,
                                                                  pair, name), options)
    if row['teacher_dtype'] == 'bf16':
        teacher_in_bf16(runner)
    return runner


def retime_groups(opts, rows):
    """The rows :func:`retime` times, by (task, pair, loss, teacher precision, budget) (the seeds
    of one share a timing): those of the chosen tasks, pairs and losses, run on this kind of
    device (cpu / cuda), whose fingerprint is what the profile's configs give now (legacy rows,
    without one, are taken as they are); the others are said and left as they are."""
    pairs = {(task, name): tuple(configs) for task in opts.tasks
             for name, configs in chosen_pairs(opts, task).items()}
    chosen, left = {}, []
    for row in rows:
        configs = pairs.get((row['task'], row['pair']))
        if configs is None or row['loss'] not in opts.losses[row['task']]:
            left.append(f'{row["task"]}/{row["pair"]} {row["loss"]}')
            continue
        made_on = (row.get('device') or opts.device).split(' ')[0]
        if made_on != opts.device:
            print(f'retime: {" ".join(key_of(row))} was run on {row["device"]}, this timing '
                  f'would be on {opts.device}: not re-timed, its step costs stay (re-time it on '
                  'its own kind of device)', flush=True)
            continue
        if not legacy(row):
            now = row_fingerprint(row_options(opts, row), row['task'], row['pair'], configs,
                                  row['loss'], int(row['seed']))
            if now.value != row['fingerprint']:
                print(f'retime: {" ".join(key_of(row))} was made by another setup than the '
                      f'profile\'s configs give now (fingerprint {row["fingerprint"]}, now '
                      f'{now.value}): not re-timed, its step costs stay', flush=True)
                continue
        key = (row['task'], row['pair'], row['loss'], row['teacher_dtype'], row['budget'])
        chosen.setdefault(key, (configs, []))[1].append(row)
    if left:
        print(f'retime: {len(left)} row(s) not chosen (--tasks / --pairs / --losses, or a pair '
              f'the profile does not have) keep their step costs: '
              f'{", ".join(dict.fromkeys(left))}', flush=True)
    return chosen


def retime_line(key, rows, costs, seconds):
    """The progress line of one timing."""
    task, pair, loss, dtype, budget = key
    ms = {k: 1000 * v for k, v in costs.items() if k.endswith('_s')}
    line = (f'[{task}/{pair}] {loss}{"" if dtype == "-" else ", teacher " + dtype}, {budget}, '
            f'seeds {", ".join(r["seed"] for r in rows)}: student step {ms["student_step_s"]:.1f} '
            'ms')
    if 'step_ratio' in costs:
        line += (f', teacher step {ms["teacher_forward_s"]:.1f} ms, distillation step '
                 f'{ms["distill_step_s"]:.1f} ms, losses {ms["loss_s"]:.2f} ms: step ratio '
                 f'{costs["step_ratio"]:.3f}, loss share {costs["loss_share"]:.2%}')
    return line + f' (load {costs["load_per_core"]:.2f} per core; {seconds:.0f} s)'


def retime(opts):
    """Measure the step costs (:data:`.matrix_report.STEP_COLUMNS`) of the rows of
    ``<out>/plug_and_play.csv`` again, on freshly built models of each row's configs, recipe,
    budget and teacher precision (random weights, the teacher without its checkpoint: a step's
    cost does not depend on the weights; no training; the task's generated set is written once
    when missing), one timing per (task, pair, loss, teacher precision, budget) shared by the
    rows of its seeds. Each re-timed row gets ``timed='retimed <date> on <device>'``; every other
    field stays as it is, the row's checksum recomputed (:func:`.rows.rewrite_rows`); the CSV is
    written whole after every timing. Returns ``dict(retimed=[row keys], timings=N)``."""
    csv_path = osp.join(opts.out, CSV_NAME)
    check_csv(csv_path, COLUMNS, 'plug-and-play', '--out')
    if not osp.isfile(csv_path):
        raise SystemExit(f'plug-and-play --retime: no {csv_path}: nothing to re-time (run the '
                         'matrix first, or give the --out of an existing one)')
    repair_rows(csv_path)
    rows = read_rows(csv_path)
    header = read_header(csv_path)
    header = [c for c in COLUMNS if c in header or c == 'timed']
    stamp = f'{RETIMED} {time.strftime("%Y-%m-%d %H:%M")} on {opts.device_name}'
    summary = dict(retimed=[], timings=0)
    data_options = {}
    for key, (configs, group) in retime_groups(opts, rows).items():
        start = time.perf_counter()
        task = key[0]
        if task not in data_options:
            data_options[task] = prepare_data(opts, task)
        runner = retime_runner(row_options(opts, group[0]), group[0], configs,
                               data_options[task])
        costs = step_costs(runner, opts.timing_repeats, opts.device)
        for row in group:
            row.update({column: '' for column in STEP_COLUMNS}, timed=stamp)
            row.update({column: str(fmt(value)) for column, value in costs.items()})
            summary['retimed'].append(key_of(row))
        rewrite_rows(csv_path, header, rows)
        summary['timings'] += 1
        print(retime_line(key, group, costs, time.perf_counter() - start), flush=True)
    return summary
