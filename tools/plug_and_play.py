"""The plug-and-play matrix: task x heterogeneous pair x loss x seed on generated data.

    python tools/plug_and_play.py [--tasks cls,seg,det] [--pairs P,...] [--losses L,...]
                                  [--seeds N] [--iters N] [--teacher-iters N] [--budget-s S]
                                  [--out results/] [--device cuda|cpu] [--teacher-bf16]
                                  [--max-wall-s S] [--smoke] [--report-only]

For every task (a small entry of :data:`TASKS`: configs, metric, data generator, losses):

1. writes the task's generated data set once (``<out>/tmp/data/<task>``; no download);
2. trains each pair's teacher once on it (``--teacher-iters``, seed 0), cached in
   ``<out>/tmp/teachers/<task>/<pair>/`` with its validation metric (and, with ``--teacher-bf16``,
   its metric under bf16 autocast), so the table is self-contained;
3. trains the student alone (loss ``none``) and distilled with each loss, same iterations
   (``--iters``, or stopped at ``--budget-s`` seconds, then validated), data order and seed;
4. measures the step cost in the same process, right after training, on one training batch:
   the median of ``--timing-repeats`` timed repetitions (CUDA synchronised) of the student's own
   training step, the teacher's no-grad forward and the distillation step; and of every loss's
   forward + backward on the inputs it received in that step (the connectors count as part of
   the step, not of the loss). ``step_ratio = distill step / (student step + teacher forward)``
   (target <= 1.10), ``loss_share = losses / distill step`` (target <= 3 %).

Every finished run appends one row to ``<out>/plug_and_play.csv`` at once (columns:
:data:`COLUMNS`); a rerun skips the rows already there (same task, pair, loss, seed, budget,
teacher iterations and teacher precision) and says ``skipped``, so the matrix can be finished
over several sessions. After every row ``<out>/plug_and_play.md`` (tables: metric and gain over
the student alone, mean +- sample std over seeds; step costs; teachers) and
``<out>/plug_and_play.png`` (bar chart of each loss's gain, matplotlib Agg) are rewritten from the
whole CSV; ``--report-only`` only rewrites them.

``--teacher-bf16``: the teacher runs under ``torch.autocast(bfloat16)`` in the distillation
steps (the losses compute in float32 as always); rows record ``teacher_dtype=bf16`` and the
teacher's bf16 metric beside its float32 one. ``--smoke``: tiny models and data, 2 iterations,
losses ``none`` and ``MSDCRD``, one seed, on the CPU, classification plus seg / det when their
adapters import here (the test suite runs it).
"""
import argparse
import csv
import importlib
import itertools
import json
import math
import multiprocessing
import os
import os.path as osp
import platform
import shutil
import statistics
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from unittest import mock

from mmengine.hooks import Hook

if __package__ in (None, ''):  # run as `python tools/plug_and_play.py`: make `tools` importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CSV_NAME, MD_NAME, PNG_NAME = 'plug_and_play.csv', 'plug_and_play.md', 'plug_and_play.png'
COLUMNS = ['task', 'pair', 'teacher', 'student', 'loss', 'seed', 'budget', 'teacher_iters',
           'teacher_dtype', 'iters', 'metric_name', 'metric', 'teacher_metric',
           'teacher_metric_bf16', 'student_alone_metric', 'gain', 'train_s', 'iter_s',
           'student_step_s', 'teacher_forward_s', 'distill_step_s', 'loss_s', 'step_ratio',
           'loss_share', 'device', 'finished']
KEY = ('task', 'pair', 'loss', 'seed', 'budget', 'teacher_iters', 'teacher_dtype')
STEP_RATIO_TARGET, LOSS_SHARE_TARGET = 1.10, 0.03
STAGES = ('stage1', 'stage2', 'stage3', 'stage4')
RUN_IDS = itertools.count()


# --------------------------------------------------------------------------------- loss items
# Each builder maps a probe of the pair (``p.student`` / ``p.teacher``: ``(C, H, W)`` of stage1..4,
# ``p.num_classes``, ``p.iters``) to ``dict(losses=[...], connectors={...})`` of ``distill_cfg``.

def logit_item(loss, tap='logits', **kwargs):
    return dict(losses=[dict(student=tap, teacher=tap, loss=loss, **kwargs)])


def projected_stages(p, stages, loss):
    """``loss`` on each of ``stages`` (1-based), the student stage through a 1x1 Projector to the
    teacher stage's width (the loss aligns the grids)."""
    return dict(
        losses=[dict(student=f'stage{i}', teacher=f'stage{i}', loss=loss, connector=f'proj{i}',
                     name=f'{loss["type"][:-4].lower()}_stage{i}') for i in stages],
        connectors={f'proj{i}': dict(type='Projector', in_channels=p.student[i - 1][0],
                                     out_channels=p.teacher[i - 1][0]) for i in stages})


def mldrkd_items(p):
    """MLDR-KD (METHODS.md §3): DFRA on the logits, on each stage branch's logits and on their
    MSDF fusion, against the teacher's logits. Branch strides bring every student stage to the
    last stage's grid; one ``embed_dim = max(student, teacher last width)`` (the shared gate)."""
    last = p.student[-1][1]
    dim = max(p.student[-1][0], p.teacher[-1][0])
    taps = list(STAGES[:len(p.student)])
    dfra = dict(type='DFRALoss')
    losses = [dict(student='logits', teacher='logits', loss=dfra, name='dfra_logits')]
    losses += [dict(student=tap, teacher='logits', loss=dfra, connector=f'msdf.branches.{i}',
                    name=f'dfra_{tap}') for i, tap in enumerate(taps)]
    losses.append(dict(student=taps, teacher='logits', loss=dfra, connector='msdf',
                       name='dfra_fused'))
    branches = [dict(in_channels=c, stride=max(1, h // last), embed_dim=dim)
                for c, h, _ in p.student]
    return dict(losses=losses, connectors=dict(
        msdf=dict(type='MSDFusion', num_classes=p.num_classes, branches=branches)))


CLS_LOSSES = {
    'KD': lambda p: logit_item(dict(type='KDLoss', tau=4.0), name='kd'),
    # DKD's CIFAR setting (mdistiller): alpha 1, beta 8, tau 4, weight ramped over ~10 % of training
    'DKD': lambda p: logit_item(dict(type='DKDLoss', alpha=1.0, beta=8.0, tau=4.0), name='dkd',
                                warmup_iters=max(1, p.iters // 10)),
    'MSDCRD': lambda p: logit_item(dict(type='MSDCRDLoss'), 'dense_logits', name='msdcrd'),
    'LFCC': lambda p: projected_stages(p, range(1, len(p.student) + 1), dict(type='LFCCLoss')),
    'MLDR-KD': mldrkd_items,
}
SEG_LOSSES = {  # settings of configs/seg/{cwd,msdcrd,lfcc}_swin_to_r18.py
    'CWD': lambda p: logit_item(dict(type='CWDLoss', tau=1.0), name='cwd', weight=3.0),
    'MSDCRD': lambda p: logit_item(dict(type='MSDCRDLoss'), name='msdcrd'),
    'LFCC': lambda p: projected_stages(p, (2, 3, 4), dict(type='LFCCLoss')),
}
DET_LOSSES = {  # settings of configs/det/{cwd,msdcrd,lfcc}_retinanet_*.py; both FPNs 64 wide
    'CWD': lambda p: logit_item(dict(type='CWDLoss', tau=1.0), 'cls_scores', name='cwd_cls',
                                weight=5.0),
    'MSDCRD': lambda p: logit_item(dict(type='MSDCRDLoss', tau=0.1, w_comp=1.0), 'neck',
                                   name='msdcrd_fpn'),
    'LFCC': lambda p: logit_item(dict(type='LFCCLoss', tau=0.1), 'neck', name='lfcc_fpn'),
}


# ---------------------------------------------------------------------------- data generators
def shapes_shard(job):
    from kdzoo.toydata import make_shapes_dataset
    root, num_classes, per_class, size, seed = job
    make_shapes_dataset(root, num_classes=num_classes, per_class=per_class, size=size, seed=seed)


def make_cls_data(root, size):
    """The shapes set (``kdzoo.adapters.cls.data.make_shapes_dataset``), drawn in parallel: shard
    ``s`` is the set of seed ``s`` with ``per_class / shards`` images per class; its files are
    then moved into ``root/<split>/<class>/<s>_<index>.png``. Deterministic for fixed sizes."""
    shards = max(1, min(16, os.cpu_count() or 1, size['per_class'][1]))
    counts = [tuple(n // shards + (s < n % shards) for n in size['per_class'])
              for s in range(shards)]
    parts = osp.join(root, 'shards')
    jobs = [(osp.join(parts, str(s)), size['num_classes'], counts[s], size['px'], s)
            for s in range(shards)]
    if shards == 1:
        shapes_shard(jobs[0])
    else:
        with multiprocessing.get_context('fork').Pool(shards) as pool:
            pool.map(shapes_shard, jobs)
    for s in range(shards):
        for split in ('train', 'val'):
            for name in sorted(os.listdir(osp.join(parts, str(s), split))):
                folder = osp.join(root, split, name)
                os.makedirs(folder, exist_ok=True)
                for f in os.listdir(osp.join(parts, str(s), split, name)):
                    os.replace(osp.join(parts, str(s), split, name, f), osp.join(folder, f'{s}_{f}'))
    shutil.rmtree(parts)
    return {f'{loader}.dataset.root': osp.join(root, split) for loader, split in
            (('train_dataloader', 'train'), ('val_dataloader', 'val'), ('test_dataloader', 'val'))}


def make_seg_data(root, size):
    from kdzoo.toydata import make_seg_dataset
    make_seg_dataset(root, num_images=size['images'], size=size['px'])
    return {f'{loader}.dataset.data_root': root
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}


def make_det_data(root, size):
    from kdzoo.toydata import make_det_dataset
    data = make_det_dataset(root, num_images=size['images'], size=size['px'])
    options = {f'{loader}.dataset.data_root': data['root'] + '/'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    options.update({f'{key}.ann_file': data['val_ann'] for key in ('val_evaluator', 'test_evaluator')})
    return options


# --------------------------------------------------------------------------------- stage probes
def probe_cls(model_cfg):
    """``(C, H, W)`` of a TimmClassifier's stage readouts, one 64 px image."""
    import torch

    import kdzoo.adapters.cls  # noqa: F401
    from kdzoo.registry import build
    model = build(model_cfg).eval()
    names = list(STAGES[:len(model.stage_indices)])
    with torch.no_grad():
        maps = model.readouts(torch.zeros(1, 3, 64, 64), names)
    return [tuple(maps[n].shape[1:]) for n in names]


def probe_seg(model_cfg):
    """``(C, H, W)`` of an mmseg segmentor's backbone outputs (its ``stage1..4``), one 64 px image."""
    import torch

    from kdzoo.adapters.mmseg.distill import build_mmseg
    model = build_mmseg(model_cfg).eval()
    with torch.no_grad():
        return [tuple(x.shape[1:]) for x in model.backbone(torch.zeros(1, 3, 64, 64))]


# ----------------------------------------------------------------------------------- the tasks
@dataclass
class Task:
    """One row group of the matrix. ``pairs``: name -> (teacher config, student config), relative to
    the repository; ``metric``: the key in the val metrics; ``make_data(root, size)`` writes the
    set and returns the cfg-options pointing the configs at it; ``probe(model dict)`` gives the
    ``(C, H, W)`` of stage1..4 for the loss builders (``None``: no builder needs it)."""
    module: str
    metric: str
    pairs: dict
    smoke_pairs: dict
    losses: dict
    make_data: callable
    data: dict
    smoke_data: dict
    iters: tuple  # (student, teacher) iterations of a full run
    probe: callable = None
    smoke_batch: int = 2
    scale: float = 1.0  # metric -> the table's units (mmdet's mAP 0..1 -> points)


PP = 'configs/plug_and_play/cls/'
TASKS = {
    'cls': Task(
        module='kdzoo.adapters.cls', metric='cls/top1',
        pairs={'swin-t_to_r18': (PP + 'swin-t.py', PP + 'r18.py'),
               'vit-s_to_r18': (PP + 'vit-s.py', PP + 'r18.py')},
        smoke_pairs={'tiny-swin_to_tiny-resnet': (PP + 'tiny_swin.py', PP + 'tiny_resnet.py'),
                     'tiny-vit_to_tiny-resnet': (PP + 'tiny_vit.py', PP + 'tiny_resnet.py')},
        losses=CLS_LOSSES, make_data=make_cls_data,
        data=dict(num_classes=24, per_class=(400, 100), px=64),
        smoke_data=dict(num_classes=24, per_class=(1, 1), px=32),
        iters=(1000, 3000), probe=probe_cls, smoke_batch=8),
    'seg': Task(
        module='kdzoo.adapters.mmseg', metric='mIoU',
        pairs={'swin-upernet_to_r18-pspnet': ('configs/seg/quickstart_teacher.py',
                                              'configs/seg/quickstart_student.py')},
        smoke_pairs=None, losses=SEG_LOSSES, make_data=make_seg_data,
        data=dict(images=(1000, 200), px=64), smoke_data=dict(images=(4, 2), px=64),
        iters=(1000, 2000), probe=probe_seg),
    'det': Task(
        module='kdzoo.adapters.mmdet', metric='coco/bbox_mAP',
        pairs={'swin-retinanet_to_r18-retinanet': (
            'configs/det/quickstart_retinanet_swin_teacher.py',
            'configs/det/quickstart_retinanet_r18.py')},
        smoke_pairs=None, losses=DET_LOSSES, make_data=make_det_data,
        data=dict(images=(1000, 200), px=128), smoke_data=dict(images=(4, 2), px=128),
        iters=(1000, 2000), scale=100.0),
}
ALL_LOSSES = ['none'] + list(dict.fromkeys(n for t in TASKS.values() for n in t.losses))
SMOKE_LOSSES = ('none', 'MSDCRD')


def adapter_error(task):
    """``None`` when the task's adapter imports here, else the reason."""
    try:
        importlib.import_module(TASKS[task].module)
    except Exception as err:  # ModuleNotFoundError, or mmcv without its compiled ops, ...
        return f'{type(err).__name__}: {err}'
    return None


# ------------------------------------------------------------------------------- running one run
class RunHook(Hook):
    """Stops training after ``seconds`` (0: never) and keeps the last validation metrics."""

    def __init__(self, seconds):
        self.seconds, self.metrics, self.start = seconds, None, None

    def before_train(self, runner):
        self.start = time.perf_counter()

    def after_train_iter(self, runner, **kwargs):
        if self.seconds and time.perf_counter() - self.start > self.seconds:
            runner.train_loop.stop_training = True

    def after_val_epoch(self, runner, metrics=None):
        self.metrics = dict(metrics or {})


@contextmanager
def unformatted_config_dumps():
    """MMEngine formats each config it dumps with yapf: seconds per mmseg / mmdet config, paid in
    every run. The dumps in the run folders are written unformatted instead."""
    from yapf.yapflib import yapf_api
    with mock.patch.object(yapf_api, 'FormatCode', lambda text, **kwargs: (text, False)):
        yield


def rescaled_schedule(cfg, iters):
    """The config's iteration-based ``param_scheduler`` stretched from its ``max_iters`` to
    ``iters`` (begin / end / T_max scaled, every scheduler at least one iteration long)."""
    ratio = iters / cfg.train_cfg.max_iters
    schedule = []
    for scheduler in cfg.get('param_scheduler') or []:
        scheduler = dict(scheduler)
        if scheduler.get('by_epoch', True):
            raise ValueError(f'plug_and_play: the schedule must be iteration-based, got {scheduler}')
        begin = round(scheduler.get('begin', 0) * ratio)
        scheduler['begin'] = begin
        if 'end' in scheduler:
            scheduler['end'] = max(begin + 1, round(scheduler['end'] * ratio))
        if 'T_max' in scheduler:
            scheduler['T_max'] = max(1, round(scheduler['T_max'] * ratio))
        schedule.append(scheduler)
    return schedule


def run_options(config, iters, seed, opts, keep_checkpoint, batch=None):
    """cfg-options common to every run: iterations, rescaled schedule, seed, loaders, checkpoint."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    options = {
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
        'param_scheduler': rescaled_schedule(cfg, iters), 'randomness.seed': seed,
        'default_hooks.logger.interval': max(1, iters // 10),
        'default_hooks.checkpoint.interval': iters if keep_checkpoint else -1,
        'default_hooks.checkpoint.save_last': keep_checkpoint,
        'log_level': 'INFO' if opts.verbose else 'WARNING',
    }
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options[f'{loader}.num_workers'] = opts.workers
        options[f'{loader}.persistent_workers'] = opts.workers > 0
    if batch:
        options['train_dataloader.batch_size'] = batch
    return options


def build(config, work_dir, options):
    """``tools/train.py``'s runner. Each gets its own experiment name: MMEngine names it after the
    config and the second, and runners of one name share one message hub (and its metrics)."""
    from tools.train import build_runner
    name = f'{osp.splitext(osp.basename(config))[0]}_{os.getpid()}_{next(RUN_IDS)}'
    args = SimpleNamespace(config=osp.join(REPO, config), work_dir=work_dir, launcher='none',
                           cfg_options=dict(options, experiment_name=name), amp=False, resume=None)
    return build_runner(args)


def unwrap(model):
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def bf16_autocast(device):
    import torch
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def autocast_teacher(model, device):
    """Run the teacher of a distilling model under bf16 autocast (every adapter calls the teacher
    through ``distiller.run_teacher``)."""
    distiller = model.distiller
    run = distiller.run_teacher

    def run_teacher(*args, **kwargs):
        with bf16_autocast(device):
            return run(*args, **kwargs)
    distiller.run_teacher = run_teacher


def train(config, work_dir, options, seconds=0, teacher_bf16=False, device='cpu'):
    """Build the runner, train, validate; returns ``(runner, metrics, seconds)``."""
    runner = build(config, work_dir, options)
    hook = RunHook(seconds)
    runner.register_hook(hook)
    model = unwrap(runner.model)
    if teacher_bf16 and hasattr(model, 'distiller'):
        autocast_teacher(model, device)
    start = time.perf_counter()
    runner.train()
    if runner.iter < runner.max_iters or hook.metrics is None:  # stopped by --budget-s
        runner.val_loop.run()
    return runner, hook.metrics, time.perf_counter() - start


def metric_of(metrics, task):
    key = TASKS[task].metric
    if not metrics:  # mmdet's CocoMetric returns nothing when the model detected nothing
        print(f'[{task}] no {key} (empty validation metrics: no detections?); counted as 0')
        return 0.0
    if key not in metrics:
        raise KeyError(f'metric {key!r} not in the validation metrics {sorted(metrics)}')
    return float(metrics[key]) * TASKS[task].scale


def median_iter_s(runner):
    """Median training iteration time (MMEngine's IterTimerHook, data loading included), the first
    tenth of the iterations left out as warm-up."""
    times = list(runner.message_hub.get_scalar('train/time').data[0])
    return statistics.median(times[len(times) // 10:]) if times else float('nan')


# ----------------------------------------------------------------------------------- step costs
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
        return costs
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
    return costs


# ------------------------------------------------------------------------------------ CSV rows
def read_rows(path):
    if not osp.isfile(path):
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def append_row(path, row):
    new = not osp.isfile(path)
    with open(path, 'a', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: fmt(row.get(k, '')) for k in COLUMNS})
        f.flush()


def fmt(value):
    return f'{value:.10g}' if isinstance(value, float) else value


def key_of(row):
    return tuple(str(row[k]) for k in KEY)


def number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')


# ------------------------------------------------------------------------------------- report
def mean_spread(values):
    """``(mean, sample std)`` of the finite values (std 0 for one value, nan for none)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return float('nan'), float('nan')
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def pm(values, digits=2):
    mean, std = mean_spread(values)
    return '—' if not math.isfinite(mean) else f'{mean:.{digits}f} ± {std:.{digits}f}'


def groups(rows, keys):
    out = {}
    for row in rows:
        out.setdefault(tuple(row[k] for k in keys), []).append(row)
    return out


def write_report(out):
    """Rewrite ``plug_and_play.md`` and ``.png`` from the whole CSV; returns their paths."""
    rows = read_rows(osp.join(out, CSV_NAME))
    lines = ['# kdzoo plug-and-play matrix', '',
             f'Generated by `tools/plug_and_play.py` from `{CSV_NAME}` ({len(rows)} runs); '
             'rewritten after every run: do not edit.', '',
             'Each line: mean ± sample standard deviation over the seeds run so far; gain = the '
             'distilled student\'s metric minus the student trained alone (same seed, iterations '
             'and data order), in points. step ratio = distillation step / (student step + teacher '
             f'no-grad forward), target ≤ {STEP_RATIO_TARGET:.2f}; loss share = the losses\' '
             f'forward + backward / distillation step, target ≤ {LOSS_SHARE_TARGET:.0%}.', '']
    devices = sorted({r['device'] for r in rows})
    lines += [f'Devices: {", ".join(devices) or "none yet"}.', '']
    setting = ('task', 'pair', 'budget', 'teacher_iters', 'teacher_dtype')
    for (task, pair, budget, t_iters, t_dtype), grp in groups(
            [r for r in rows if r['loss'] != 'none'], setting).items():
        alone = [r for r in rows if (r['task'], r['pair'], r['budget'], r['loss'])
                 == (task, pair, budget, 'none')]
        metric = grp[0]['metric_name']
        teacher = number(grp[0]['teacher_metric'])
        student = mean_spread([number(r['metric']) for r in alone])[0]
        lines += [f'## {task}: {pair} ({grp[0]["teacher"]} → {grp[0]["student"]}), {budget}, '
                  f'teacher {t_iters} iterations, {t_dtype}', '',
                  f'Teacher {metric}: {teacher:.2f} (bf16 autocast: '
                  f'{grp[0]["teacher_metric_bf16"] or "not measured"}).', '']
        if math.isfinite(student) and not teacher > student:
            lines += [f'**The teacher ({teacher:.2f}) does not beat the student alone '
                      f'({student:.2f}) here: the gains below are not evidence of distillation.**',
                      '']
        lines += [f'| loss | seeds | {metric} | gain | step ratio | loss share |',
                  '|---|---:|---:|---:|---:|---:|',
                  f'| none (student alone) | {len(alone)} | '
                  f'{pm([number(r["metric"]) for r in alone])} | — | — | — |']
        for loss, runs in groups(grp, ('loss',)).items():
            ratio = mean_spread([number(r['step_ratio']) for r in runs])[0]
            share = mean_spread([number(r['loss_share']) for r in runs])[0]
            lines.append(f'| {loss[0]} | {len(runs)} | {pm([number(r["metric"]) for r in runs])} | '
                         f'{pm([number(r["gain"]) for r in runs])} | {ratio:.3f} | {share:.2%} |')
        lines.append('')
    with open(osp.join(out, MD_NAME), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return osp.join(out, MD_NAME), write_chart(rows, osp.join(out, PNG_NAME))


def write_chart(rows, path):
    """One panel per (task, pair, budget, teacher precision): each loss's mean gain, error bar ±
    sample std over seeds. ``None`` (with a message) where matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print(f'matplotlib is not installed: no {PNG_NAME} (run --report-only where it is)')
        return None
    panels = groups([r for r in rows if r['loss'] != 'none'],
                    ('task', 'pair', 'budget', 'teacher_dtype'))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4 + 3.5 * len(panels), 4),
                             squeeze=False)
    for ax, ((task, pair, budget, dtype), grp) in zip(axes[0], panels.items()):
        by_loss = groups(grp, ('loss',))
        stats = [mean_spread([number(r['gain']) for r in runs]) for runs in by_loss.values()]
        ax.bar([k[0] for k in by_loss], [m for m, _ in stats], yerr=[s for _, s in stats],
               capsize=4, color='tab:blue')
        ax.axhline(0, color='black', linewidth=0.8)
        ax.set_title(f'{task}: {pair}\n{budget}, teacher {dtype}', fontsize=9)
        ax.set_ylabel(f'gain in {grp[0]["metric_name"]} over student alone')
        ax.tick_params(axis='x', labelrotation=30)
    if not panels:
        axes[0][0].text(0.5, 0.5, 'no distillation runs yet', ha='center', va='center')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------- the matrix
def device_name(device):
    import torch
    if device == 'cuda':
        return torch.cuda.get_device_name()
    return f'cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)'


def prepare_data(task, opts):
    """Write the task's set once (a ``done.json`` marks a finished one); returns its cfg-options."""
    entry = TASKS[task]
    size = entry.smoke_data if opts.smoke else entry.data
    root = osp.join(opts.out, 'tmp', 'data', task + ('_smoke' if opts.smoke else ''))
    marker = osp.join(root, 'done.json')
    if osp.isfile(marker):
        with open(marker) as f:
            done = json.load(f)
        if done['size'] == json.loads(json.dumps(size)):
            return done['options']
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    options = entry.make_data(root, size)
    with open(marker, 'w') as f:
        json.dump(dict(size=size, options=options), f)
    print(f'[{task}] data {size} written to {root} in {time.perf_counter() - start:.0f} s',
          flush=True)
    return options


def model_name(config):
    """A short name of a config's model (timm name, or the mmseg / mmdet backbone type)."""
    from mmengine.config import Config
    model = Config.fromfile(osp.join(REPO, config)).model
    if 'model_name' in model:
        return model.model_name
    return f'{model.get("type")}/{model.backbone.get("type")}-{model.backbone.get("depth", "")}'


def teacher_run(task, pair, configs, opts, data_options):
    """Train (or read from the cache) the pair's teacher; returns its record: checkpoint, metric,
    and with ``--teacher-bf16`` its metric under bf16 autocast."""
    iters = opts.teacher_iters[task]
    folder = osp.join(opts.out, 'tmp', 'teachers', task, f'{pair}_{iters}it')
    record_path = osp.join(folder, 'teacher.json')
    record, runner = None, None
    if osp.isfile(record_path):
        with open(record_path) as f:
            record = json.load(f)
    if record is None or not osp.isfile(record['checkpoint']):
        options = dict(data_options, **run_options(configs[0], iters, 0, opts, True,
                                                   opts.batch[task]))
        print(f'[{task}/{pair}] teacher {configs[0]}: {iters} iterations', flush=True)
        runner, metrics, seconds = train(configs[0], folder, options, device=opts.device)
        record = dict(checkpoint=osp.join(folder, f'iter_{runner.iter}.pth'),
                      metric=metric_of(metrics, task), seconds=seconds, iters=runner.iter,
                      metric_bf16=None)
    if opts.teacher_bf16 and record['metric_bf16'] is None:
        if runner is None:  # a cached teacher: load it into a fresh runner to validate it
            runner = build(configs[0], folder, dict(
                data_options, **run_options(configs[0], 1, 0, opts, False),
                load_from=record['checkpoint']))
            runner.load_or_resume()
        with bf16_autocast(opts.device):
            record['metric_bf16'] = metric_of(runner.val_loop.run(), task)
    with open(record_path, 'w') as f:
        json.dump(record, f, indent=1)
    print(f'[{task}/{pair}] teacher {TASKS[task].metric} = {record["metric"]:.2f}'
          + (f', under bf16 autocast {record["metric_bf16"]:.2f}' if opts.teacher_bf16 else ''),
          flush=True)
    return record


@lru_cache(maxsize=None)
def probe_pair(task, configs, iters):
    """The ``p`` given to the loss builders: stage shapes of both models, classes, iterations."""
    from mmengine.config import Config
    teacher, student = (Config.fromfile(osp.join(REPO, c)).model for c in configs)
    probe = TASKS[task].probe
    return SimpleNamespace(
        student=probe(student) if probe else None, teacher=probe(teacher) if probe else None,
        num_classes=student.get('num_classes'), iters=iters)


def student_run(task, pair, configs, loss, seed, opts, data_options, teacher):
    """Train the student alone (``loss='none'``) or distilled; returns the row's measured fields."""
    entry = TASKS[task]
    options = dict(data_options, **run_options(configs[1], opts.iters[task], seed, opts, False,
                                               opts.batch[task]))
    if loss != 'none':
        items = entry.losses[loss](probe_pair(task, configs, opts.iters[task]))
        options['distill_cfg'] = dict(
            teacher=dict(config=osp.join(REPO, configs[0]), checkpoint=teacher['checkpoint']),
            teacher_check=False, **items)
    work_dir = osp.join(opts.out, 'tmp', 'runs', task, pair, f'{loss}_seed{seed}')
    runner, metrics, seconds = train(configs[1], work_dir, options, opts.budget_s,
                                     opts.teacher_bf16, opts.device)
    fields = dict(iters=runner.iter, metric=metric_of(metrics, task), train_s=seconds,
                  iter_s=median_iter_s(runner))
    fields.update(step_costs(runner, opts.timing_repeats, opts.device,
                             opts.teacher_bf16 and loss != 'none'))
    return fields


def run_matrix(opts):
    """Run every missing row; returns ``dict(done=[keys], skipped=[keys])``."""
    csv_path = osp.join(opts.out, CSV_NAME)
    done = {key_of(r): r for r in read_rows(csv_path)}
    summary = dict(done=[], skipped=[])
    start = time.perf_counter()
    longest = 0.0
    for task in opts.tasks:
        entry = TASKS[task]
        pairs = entry.smoke_pairs if opts.smoke and entry.smoke_pairs else entry.pairs
        pairs = {k: v for k, v in pairs.items() if not opts.pairs or k in opts.pairs}
        losses = [n for n in opts.losses if n == 'none' or n in entry.losses]
        data_options = None
        for pair, configs in pairs.items():
            teacher = None
            for seed in range(opts.seeds):
                for loss in losses:
                    row = dict(task=task, pair=pair, loss=loss, seed=seed, budget=opts.budget[task],
                               teacher_iters='-' if loss == 'none' else opts.teacher_iters[task],
                               teacher_dtype='-' if loss == 'none' else
                               ('bf16' if opts.teacher_bf16 else 'fp32'))
                    key = key_of(row)
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
                    if data_options is None:
                        data_options = prepare_data(task, opts)
                    if teacher is None:
                        teacher = teacher_run(task, pair, configs, opts, data_options)
                    print(f'[{task}/{pair}] {loss}, seed {seed}, {opts.budget[task]}', flush=True)
                    row.update(student_run(task, pair, configs, loss, seed, opts, data_options,
                                           teacher))
                    alone = done.get(key_of(dict(row, loss='none', teacher_iters='-',
                                                 teacher_dtype='-')))
                    alone_metric = row['metric'] if loss == 'none' else number(
                        alone['metric'] if alone else None)
                    row.update(teacher=model_name(configs[0]), student=model_name(configs[1]),
                               metric_name=entry.metric, teacher_metric=teacher['metric'],
                               teacher_metric_bf16=('' if teacher['metric_bf16'] is None
                                                    else teacher['metric_bf16']),
                               student_alone_metric=alone_metric,
                               gain=round(row['metric'] - alone_metric, 6), device=opts.device_name,
                               finished=time.strftime('%Y-%m-%d %H:%M:%S'))
                    append_row(csv_path, row)
                    done[key] = {k: fmt(v) for k, v in row.items()}
                    summary['done'].append(key)
                    write_report(opts.out)
                    longest = max(longest, time.perf_counter() - run_start)
                    print(f'  {entry.metric} = {row["metric"]:.2f} (gain {row["gain"]:+.2f}), '
                          f'step ratio {row.get("step_ratio", float("nan")):.3f}, loss share '
                          f'{row.get("loss_share", float("nan")):.2%}', flush=True)
    return summary


# ------------------------------------------------------------------------------- command line
def parse_list(text, allowed, what):
    if text is None:
        return None
    names = [n.strip() for n in text.split(',') if n.strip()]
    lookup = {a.lower(): a for a in allowed}
    unknown = [n for n in names if n.lower() not in lookup]
    if unknown:
        raise SystemExit(f'unknown {what} {unknown}; choose from {list(allowed)}')
    return [lookup[n.lower()] for n in names]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tasks', help='comma-separated: cls,seg,det (default: all; --smoke: '
                        'cls and those whose adapter imports)')
    parser.add_argument('--pairs', help='comma-separated pair names (default: all of each task)')
    parser.add_argument('--losses', help=f'comma-separated, from {ALL_LOSSES}; "none" (the '
                        'student alone, needed for the gains) is always run (default: all)')
    parser.add_argument('--seeds', type=int, help='seeds 0..N-1 (default 2; --smoke 1)')
    parser.add_argument('--iters', type=int, help='student iterations (default per task: cls '
                        f'{TASKS["cls"].iters[0]}, seg {TASKS["seg"].iters[0]}, det '
                        f'{TASKS["det"].iters[0]}; --smoke 2)')
    parser.add_argument('--teacher-iters', type=int, help='teacher iterations (default per task: '
                        f'cls {TASKS["cls"].iters[1]}, seg {TASKS["seg"].iters[1]}, det '
                        f'{TASKS["det"].iters[1]}; --smoke 2)')
    parser.add_argument('--budget-s', type=float, default=0.0,
                        help='also stop each student run after S seconds, then validate')
    parser.add_argument('--out', default=osp.join(REPO, 'results'),
                        help='CSV, markdown and PNG here; data, teachers, runs under OUT/tmp')
    parser.add_argument('--device', choices=['cuda', 'cpu'],
                        help='default: cuda when available (--smoke: cpu)')
    parser.add_argument('--teacher-bf16', action='store_true',
                        help='teacher forward under bf16 autocast (and its bf16 metric measured)')
    parser.add_argument('--batch', type=int, help='training batch (default: the config\'s)')
    parser.add_argument('--workers', type=int,
                        help='data loader workers (default: 8 on cuda, 0 on cpu)')
    parser.add_argument('--timing-repeats', type=int, help='step-cost repetitions (default 20; '
                        '--smoke 2)')
    parser.add_argument('--max-wall-s', type=float, default=0.0,
                        help='start no run that might end after S seconds (rerun to continue)')
    parser.add_argument('--verbose', action='store_true',
                        help='MMEngine\'s INFO log of every run (progress, ETA); default WARNING')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny models and data, 2 iterations, none+MSDCRD, 1 seed, CPU')
    parser.add_argument('--report-only', action='store_true',
                        help='only rewrite the markdown and PNG from the CSV')
    return parser.parse_args(argv)


def resolve(args):
    """Fill the defaults (those of ``--smoke`` where it is given)."""
    smoke = args.smoke
    if args.tasks is None:
        tasks = [t for t in TASKS if t == 'cls' or adapter_error(t) is None] if smoke else list(TASKS)
    else:
        tasks = parse_list(args.tasks, TASKS, 'tasks')
    for task in tasks:
        error = adapter_error(task)
        if error:
            raise SystemExit(f'task {task!r}: adapter not available ({TASKS[task].module}): '
                             f'{error}')
    pairs = parse_list(args.pairs, [p for t in TASKS.values()
                                    for p in list(t.pairs) + list(t.smoke_pairs or {})], 'pairs')
    losses = parse_list(args.losses, ALL_LOSSES, 'losses') or (SMOKE_LOSSES if smoke else ALL_LOSSES)
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() and not smoke else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA GPU is visible')
    iters = {t: args.iters or (2 if smoke else TASKS[t].iters[0]) for t in TASKS}
    opts = SimpleNamespace(
        tasks=tasks, pairs=pairs, losses=['none'] + [n for n in losses if n != 'none'],
        seeds=args.seeds or (1 if smoke else 2), iters=iters,
        teacher_iters={t: args.teacher_iters or (2 if smoke else TASKS[t].iters[1]) for t in TASKS},
        budget={t: f'{iters[t]}it' + (f'/{args.budget_s:g}s' if args.budget_s else '')
                for t in TASKS},
        budget_s=args.budget_s, out=osp.abspath(args.out), device=device, smoke=smoke,
        teacher_bf16=args.teacher_bf16, max_wall_s=args.max_wall_s, verbose=args.verbose,
        batch={t: args.batch or (TASKS[t].smoke_batch if smoke else None) for t in TASKS},
        workers=args.workers if args.workers is not None else (8 if device == 'cuda' else 0),
        timing_repeats=args.timing_repeats or (2 if smoke else 20))
    opts.device_name = device_name(device)
    return opts


def main(argv=None):
    args = parse_args(argv)
    out = osp.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    if args.report_only:
        return write_report(out)
    opts = resolve(args)
    print(f'plug-and-play: tasks {opts.tasks}, losses {opts.losses}, {opts.seeds} seed(s), '
          f'{opts.device_name}, out {out}', flush=True)
    start = time.perf_counter()
    with unformatted_config_dumps():
        summary = run_matrix(opts)
    md, png = write_report(out)
    print(f'{len(summary["done"])} run(s) done, {len(summary["skipped"])} skipped, in '
          f'{time.perf_counter() - start:.0f} s; {osp.join(out, CSV_NAME)}, {md}, {png}')
    return summary


if __name__ == '__main__':
    main()
