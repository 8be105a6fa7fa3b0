"""The plug-and-play matrix: task x heterogeneous pair x loss x seed on generated data.

    python tools/plug_and_play.py [--tasks cls,seg,det] [--pairs P,...] [--losses L,...]
                                  [--seeds N] [--iters N] [--teacher-iters N] [--budget-s S]
                                  [--out results/] [--device cuda|cpu] [--teacher-bf16]
                                  [--max-wall-s S] [--smoke] [--report-only]

A matrix of the experiment engine's runs (:mod:`kdzoo.experiments`: ``runs`` trains a config for
a budget, ``recipes`` reads each loss's items from a shipped config and fits them to the pair,
``timing`` measures step costs, ``matrix_report`` writes the tables). For every task (a small
entry of :data:`TASKS`: configs, metric, data generator, losses):

1. writes the task's generated data set once (``<out>/tmp/data/<task>``; no download);
2. trains each pair's teacher once on it (``--teacher-iters``, seed 0), cached in
   ``<out>/tmp/teachers/<task>/<pair>_<iters>it/`` with its validation metric (and, with
   ``--teacher-bf16``, its metric under bf16 autocast) and the fingerprint of its resolved config
   and options (a change that alters training trains it again; workers and logging do not), so
   the table is self-contained;
3. trains the student alone (loss ``none``) and distilled with each loss, same iterations
   (``--iters``, the profile's per task or per pair, or stopped at ``--budget-s`` seconds, then
   validated), paired within a seed:
   the same initial student weights and the same augmented batches in the same order;
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
import dataclasses
import importlib
import json
import multiprocessing
import os
import os.path as osp
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace

from kdzoo.experiments.matrix_report import (
    COLUMNS,
    CSV_NAME,
    PLAN_NAME,
    key_of,
    read_plan,
    write_report,
)
from kdzoo.experiments.recipes import STAGES, recipe
from kdzoo.experiments.rows import append_row, fmt, number, read_rows
from kdzoo.experiments.runs import (
    budget_options,
    config_sha,
    make_runner,
    metric_value,
    train_run,
    unwrap,
)
from kdzoo.experiments.timing import bf16_autocast, cpu_model, step_costs
from kdzoo.patches import unformatted_config_dumps

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


# -------------------------------------------------------------------------------- loss recipes
# Each loss of a task is the distill_cfg of a shipped config, fitted to the pair
# (kdzoo.experiments.recipes); the paths are relative to the repository.
CLS_LOSSES = {name: f'configs/cls/{stem}_swin-t_to_r18_cifar100.py' for name, stem in (
    ('KD', 'kd'), ('DKD', 'dkd'), ('DIST', 'dist'), ('OFA', 'ofa'), ('MSDCRD', 'msdcrd'),
    ('LFCC', 'lfcc'), ('MLDR-KD', 'mldrkd'))}
SEG_LOSSES = {name: f'configs/seg/{stem}_swin_to_r18.py' for name, stem in (
    ('KD', 'kd'), ('CWD', 'cwd'), ('MSDCRD', 'msdcrd'), ('LFCC', 'lfcc'))}
DET_LOSSES = {
    'CWD': 'configs/det/cwd_retinanet_x101-64x4d-to-r18_cls-scores_coco.py',
    'PKD': 'configs/det/pkd_gfl_x101-32x4d-to-r50_fpn_coco.py',
    'MSDCRD': 'configs/det/msdcrd_retinanet_x101-64x4d-to-r18_fpn_coco.py',
    'LFCC': 'configs/det/lfcc_retinanet_x101-64x4d-to-r18_fpn_coco.py',
}


def recipe_of(task, loss, p):
    """The distill items of ``loss`` for the probed pair ``p`` (see ``recipes.recipe``)."""
    return recipe(osp.join(REPO, TASKS[task].losses[loss]), p)


# ---------------------------------------------------------------------------- data generators
def shapes_shard(job):
    from kdzoo.toydata import make_shapes_dataset
    root, num_classes, per_class, size, seed = job
    make_shapes_dataset(root, num_classes=num_classes, per_class=per_class, size=size, seed=seed)


def make_cls_data(root, size):
    """The shapes set (``kdzoo.toydata.make_shapes_dataset``), drawn in parallel: shard
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
                    os.replace(osp.join(parts, str(s), split, name, f),
                               osp.join(folder, f'{s}_{f}'))
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
    options.update({f'{key}.ann_file': data['val_ann']
                    for key in ('val_evaluator', 'test_evaluator')})
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
    """``(C, H, W)`` of an mmseg segmentor's backbone outputs (its ``stage1..4``), one 64 px
    image."""
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
    seeds: int = 2
    run_losses: tuple = None  # the losses a full run trains (default: every entry of ``losses``)
    student_iters: dict = None  # pair -> student iterations, where it differs from ``iters[0]``
    teacher_iters: dict = None  # pair -> teacher iterations, where it differs from ``iters[1]``
    batch: int = None  # training batch of a full run (default: the config's)
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
# The profiles: what a full run trains. 'gpu' is TASKS as above; 'cpu' is sized for a 2-core
# machine without GPU, run over several sittings (every finished run is kept). Measured on a
# 2-core machine: seg 31.5 min (teacher 10.6 min), det 33.8 min (teacher 10.2 min), cls
# resnet10t_to_vit seeds 1-2 25.5 min (teacher 1.5 min; partly shared with other jobs), the
# vit_to_test-resnet teacher 29.3 min. docs/results.md has every sitting.
# vit_to_test-resnet: a transformer trained from scratch learns this set far more slowly than a
# CNN. The ViT teacher reached 36.0 % top-1 after 3000 iterations (55.8 % on its training set);
# two Swin variants 18.4 and 14.6 % after 600; the test_resnet student alone 49.6 % after 500
# iterations (the teacher too weak: KD lost 3.6 points), 26.4 after 200 and 20.2 after 100. So
# this pair's student runs 200 iterations, where its teacher is 9.4 points ahead (36.0, 26.6).
CPU_PROFILE = {
    'cls': dict(
        pairs={'resnet10t_to_vit': ('configs/quickstart/teacher.py',
                                    'configs/quickstart/student.py'),
               'vit_to_test-resnet': (PP + 'cpu_vit.py', PP + 'cpu_resnet.py')},
        student_iters={'vit_to_test-resnet': 200},
        teacher_iters={'resnet10t_to_vit': 600, 'vit_to_test-resnet': 3000},
        data=dict(num_classes=10, per_class=(200, 50), px=32), iters=(500, 600), seeds=3,
        run_losses=('KD', 'DKD', 'DIST', 'OFA', 'MSDCRD', 'LFCC', 'MLDR-KD'), batch=64),
    # seg at 500 / 1000 iterations learnt nothing (teacher 9.05, student alone 8.24 mIoU: both
    # predict background everywhere; the student alone reaches 17.9 at 1000 and 30.1 at 2000
    # iterations): 1000 student / 4000 teacher iterations
    'seg': dict(data=dict(images=(400, 100), px=64), iters=(1000, 4000), seeds=2,
                run_losses=('KD', 'CWD', 'MSDCRD', 'LFCC')),
    # det: the ResNet-18 student alone learns fast here (bbox mAP 35.6 at 500, 48.8 at 1000 of
    # 1500 iterations); a Swin trained from scratch learns more slowly (seg: 9 at 1000, 27 at 4000
    # iterations), so the teacher gets 2000 iterations
    'det': dict(data=dict(images=(400, 100), px=128), iters=(300, 2000), seeds=2,
                run_losses=('CWD', 'PKD', 'MSDCRD', 'LFCC')),
}
PROFILES = {'gpu': {}, 'cpu': CPU_PROFILE}
ALL_LOSSES = ['none'] + list(dict.fromkeys(n for t in TASKS.values() for n in t.losses))
SMOKE_LOSSES = ('none', 'MSDCRD')


def adapter_error(task):
    """``None`` when the task's adapter imports here, else the reason."""
    try:
        importlib.import_module(TASKS[task].module)
    except Exception as err:  # ModuleNotFoundError, or mmcv without its compiled ops, ...
        return f'{type(err).__name__}: {err}'
    return None


# ------------------------------------------------------------------------------- running a run
def autocast_teacher(device):
    """A runner hook running the teacher of a distilling model under bf16 autocast (every adapter
    calls the teacher through ``distiller.run_teacher``)."""
    def wrap(runner):
        distiller = unwrap(runner.model).distiller
        run = distiller.run_teacher

        def run_teacher(*args, **kwargs):
            with bf16_autocast(device):
                return run(*args, **kwargs)
        distiller.run_teacher = run_teacher
    return wrap


def run_options(task, config, iters, seed, opts, batch=None):
    """cfg-options of one run: the engine's budget (iterations, rescaled schedule, one final
    evaluation, seed), the loaders' workers and batch."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, config))
    options = budget_options(cfg, iters, 1, seed, opts.workers, opts.verbose)
    if batch:
        options['train_dataloader.batch_size'] = batch
    return options


# --------------------------------------------------------------------------------- the matrix
def device_name(device):
    import torch
    if device == 'cuda':
        return torch.cuda.get_device_name()
    return f'cpu ({cpu_model()}, {torch.get_num_threads()} threads)'


def prepare_data(task, opts):
    """Write the task's set once (a ``done.json`` marks a finished one); returns its cfg-options."""
    entry = opts.task[task]
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
    entry, iters = TASKS[task], iters_of(opts, task, pair, 'teacher')
    config = osp.join(REPO, configs[0])
    folder = osp.join(opts.out, 'tmp', 'teachers', task, f'{pair}_{iters}it')
    record_path = osp.join(folder, 'teacher.json')
    options = dict(data_options, **run_options(task, configs[0], iters, 0, opts, opts.batch[task]))
    options.update({'default_hooks.checkpoint.interval': iters,
                    'default_hooks.checkpoint.save_last': True})
    trained_with = config_sha(config, options, root=opts.out)
    record = None
    if osp.isfile(record_path):
        with open(record_path) as f:
            record = json.load(f)
        if 'config_sha' not in record:
            print(f'[{task}/{pair}] the cached teacher in {folder} was written before its config '
                  f'was recorded: kept, and taken as trained with {configs[0]} as it is now '
                  '(delete the folder to train it again)', flush=True)
            record['config_sha'] = trained_with
        elif record['config_sha'] != trained_with:
            print(f'[{task}/{pair}] the cached teacher in {folder} was trained with another '
                  f'config or options than {configs[0]} has now: training it again', flush=True)
            record = None
    if record is None or not osp.isfile(record['checkpoint']):
        print(f'[{task}/{pair}] teacher {configs[0]}: {iters} iterations', flush=True)
        runner, result = train_run(config, folder, options, entry.metric, entry.scale)
        record = dict(checkpoint=osp.join(folder, f'iter_{runner.iter}.pth'), metric=result.last,
                      seconds=result.seconds, iters=runner.iter, metric_bf16=None,
                      config_sha=trained_with)
    if opts.teacher_bf16 and record['metric_bf16'] is None:
        runner = make_runner(config, folder, dict(
            data_options, **run_options(task, configs[0], 1, 0, opts),
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
    """Train the student alone (``loss='none'``) or distilled; returns the row's measured fields.
    Every run of a (pair, seed) starts from the same student (one initial-weights file) and sees
    the same batches (the seeded data stream), whatever its loss."""
    entry = TASKS[task]
    iters = iters_of(opts, task, pair, 'student')
    options = dict(data_options, **run_options(task, configs[1], iters, seed, opts,
                                               opts.batch[task]))
    if loss != 'none':
        items = recipe_of(task, loss, probe_pair(task, configs, iters))
        options['distill_cfg'] = dict(
            teacher=dict(config=osp.join(REPO, configs[0]), checkpoint=teacher['checkpoint']),
            teacher_check=False, **items)
    runs = osp.join(opts.out, 'tmp', 'runs', task, pair)  # one initial student per seed
    work_dir = osp.join(runs, budget_of(opts, task, pair).replace('/', '_'), f'{loss}_seed{seed}')
    runner, result = train_run(
        osp.join(REPO, configs[1]), work_dir, options, entry.metric, entry.scale,
        init_file=osp.join(runs, f'seed{seed}_student_init.pth'), seconds=opts.budget_s,
        runner_hook=autocast_teacher(opts.device) if opts.teacher_bf16 and loss != 'none' else None)
    fields = dict(iters=result.iters, metric=result.last, train_s=result.seconds,
                  iter_s=result.iter_s, init_sha=result.init_sha, batches_sha=result.batches_sha)
    fields.update(step_costs(runner, opts.timing_repeats, opts.device,
                             opts.teacher_bf16 and loss != 'none'))
    return fields


def iters_of(opts, task, pair, role):
    """The iterations of ``pair``'s ``role`` ('student' or 'teacher'): ``--iters`` /
    ``--teacher-iters``, 2 with ``--smoke``, else the profile's (per pair where it says so)."""
    teacher = role == 'teacher'
    given = opts.teacher_iters if teacher else opts.iters
    if given:
        return given
    entry = opts.task[task]
    per_pair = (entry.teacher_iters if teacher else entry.student_iters) or {}
    return 2 if opts.smoke else per_pair.get(pair, entry.iters[int(teacher)])


def budget_of(opts, task, pair):
    """The budget of the pair's student runs, as the CSV and the report name it: ``500it``, or
    ``500it/60s`` with ``--budget-s``."""
    return (f'{iters_of(opts, task, pair, "student")}it'
            + (f'/{opts.budget_s:g}s' if opts.budget_s else ''))


def write_plan(opts):
    """``plug_and_play_plan.json``: every row the profile asks for, so the report can show the
    rows not run yet (the CSV holds the finished ones only). A sitting run with ``--tasks`` /
    ``--pairs`` replaces its own (task, pair) entries and keeps the others an earlier sitting of
    the same profile planned: the report still shows them, run or not."""
    old = read_plan(opts.out) or {}
    earlier = (old['rows'] if (old.get('profile'), old.get('smoke', False))
               == (opts.profile, opts.smoke) else [])
    plan = []
    for task in opts.tasks:
        entry = opts.task[task]
        pairs = entry.smoke_pairs if opts.smoke and entry.smoke_pairs else entry.pairs
        for pair, (teacher, student) in pairs.items():
            if opts.pairs and pair not in opts.pairs:
                continue
            plan.append(dict(task=task, pair=pair, teacher=teacher, student=student,
                             losses=opts.losses[task], seeds=opts.seeds[task],
                             budget=budget_of(opts, task, pair),
                             iters=iters_of(opts, task, pair, 'student'),
                             teacher_iters=iters_of(opts, task, pair, 'teacher'),
                             teacher_dtype='bf16' if opts.teacher_bf16 else 'fp32'))
    planned = {(e['task'], e['pair']): e for e in earlier}
    planned.update({(e['task'], e['pair']): e for e in plan})
    with open(osp.join(opts.out, PLAN_NAME), 'w') as f:
        json.dump(dict(profile=opts.profile, smoke=opts.smoke, device=opts.device_name,
                       rows=list(planned.values())), f, indent=1)


def run_matrix(opts):
    """Run every missing row; returns ``dict(done=[keys], skipped=[keys])``."""
    csv_path = osp.join(opts.out, CSV_NAME)
    done = {key_of(r): r for r in read_rows(csv_path)}
    summary = dict(done=[], skipped=[])
    start = time.perf_counter()
    longest = 0.0
    for task in opts.tasks:
        entry = opts.task[task]
        pairs = entry.smoke_pairs if opts.smoke and entry.smoke_pairs else entry.pairs
        pairs = {k: v for k, v in pairs.items() if not opts.pairs or k in opts.pairs}
        data_options = None
        for pair, configs in pairs.items():
            teacher = None
            for seed in range(opts.seeds[task]):
                for loss in opts.losses[task]:
                    row = dict(task=task, pair=pair, loss=loss, seed=seed,
                               budget=budget_of(opts, task, pair),
                               teacher_iters='-' if loss == 'none'
                               else iters_of(opts, task, pair, 'teacher'),
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
                    print(f'[{task}/{pair}] {loss}, seed {seed}, {row["budget"]}', flush=True)
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
                    append_row(csv_path, COLUMNS, row)
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
    parser.add_argument('--profile', choices=sorted(PROFILES), default='gpu',
                        help='what a full run trains: gpu (the defaults below) or cpu (sized for '
                        'a 2-core machine: its pairs, data, iterations, seeds and losses; output '
                        'results/cpu)')
    parser.add_argument('--tasks', help='comma-separated: cls,seg,det (default: all; --smoke: '
                        'cls and those whose adapter imports)')
    parser.add_argument('--pairs', help='comma-separated pair names (default: all of each task)')
    parser.add_argument('--losses', help=f'comma-separated, from {ALL_LOSSES}; "none" (the '
                        'student alone, needed for the gains) is always run (default: all)')
    parser.add_argument('--seeds', type=int, help='seeds 0..N-1 (default: the profile\'s, 2 on '
                        'gpu; --smoke 1)')
    parser.add_argument('--iters', type=int, help='student iterations (default per task, or per '
                        'pair where the profile says so: cls '
                        f'{TASKS["cls"].iters[0]}, seg {TASKS["seg"].iters[0]}, det '
                        f'{TASKS["det"].iters[0]}; --smoke 2)')
    parser.add_argument('--teacher-iters', type=int, help='teacher iterations (default per task: '
                        f'cls {TASKS["cls"].iters[1]}, seg {TASKS["seg"].iters[1]}, det '
                        f'{TASKS["det"].iters[1]}; --smoke 2)')
    parser.add_argument('--budget-s', type=float, default=0.0,
                        help='also stop each student run after S seconds, then validate')
    parser.add_argument('--out', help='CSV, markdown and PNG here; data, teachers, runs under '
                        'OUT/tmp (default: results/, with --profile cpu results/cpu/)')
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
    """Fill the defaults: the profile's, or those of ``--smoke`` where it is given."""
    smoke = args.smoke
    task_cfg = {t: dataclasses.replace(TASKS[t], **PROFILES[args.profile].get(t, {}))
                for t in TASKS}
    if args.tasks is None:
        tasks = ([t for t in TASKS if t == 'cls' or adapter_error(t) is None] if smoke
                 else list(TASKS))
    else:
        tasks = parse_list(args.tasks, TASKS, 'tasks')
    for task in tasks:
        error = adapter_error(task)
        if error:
            raise SystemExit(f'task {task!r}: adapter not available ({TASKS[task].module}): '
                             f'{error}')
    pairs = parse_list(args.pairs, [p for t in task_cfg.values()
                                    for p in list(t.pairs) + list(t.smoke_pairs or {})], 'pairs')
    chosen = parse_list(args.losses, ALL_LOSSES, 'losses')
    losses = {}
    for t, entry in task_cfg.items():
        names = chosen or (SMOKE_LOSSES if smoke else entry.run_losses or list(entry.losses))
        losses[t] = ['none'] + [n for n in names if n != 'none' and n in entry.losses]
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() and not smoke else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA GPU is visible')
    out = args.out or osp.join(REPO, 'results', *(['cpu'] if args.profile == 'cpu' else []))
    opts = SimpleNamespace(
        profile=args.profile, task=task_cfg, tasks=tasks, pairs=pairs, losses=losses,
        seeds={t: args.seeds or (1 if smoke else task_cfg[t].seeds) for t in TASKS},
        iters=args.iters, teacher_iters=args.teacher_iters, budget_s=args.budget_s,
        out=osp.abspath(out), device=device, smoke=smoke,
        teacher_bf16=args.teacher_bf16, max_wall_s=args.max_wall_s, verbose=args.verbose,
        batch={t: args.batch or (TASKS[t].smoke_batch if smoke else task_cfg[t].batch)
               for t in TASKS},
        workers=args.workers if args.workers is not None else (8 if device == 'cuda' else 0),
        timing_repeats=args.timing_repeats or (2 if smoke else 20))
    opts.device_name = device_name(device)
    return opts


def main(argv=None):
    args = parse_args(argv)
    if args.report_only:
        out = osp.abspath(args.out or osp.join(REPO, 'results', *(
            ['cpu'] if args.profile == 'cpu' else [])))
        return write_report(out)
    opts = resolve(args)
    os.makedirs(opts.out, exist_ok=True)
    print(f'plug-and-play ({opts.profile} profile): tasks {opts.tasks}, losses {opts.losses}, '
          f'seeds {opts.seeds}, {opts.device_name}, out {opts.out}', flush=True)
    write_plan(opts)
    start = time.perf_counter()
    with unformatted_config_dumps():
        summary = run_matrix(opts)
    md, png = write_report(opts.out)
    print(f'{len(summary["done"])} run(s) done, {len(summary["skipped"])} skipped, in '
          f'{time.perf_counter() - start:.0f} s; {osp.join(opts.out, CSV_NAME)}, {md}, {png}')
    return summary


if __name__ == '__main__':
    main()
