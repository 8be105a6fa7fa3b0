"""What the teacher-output cache saves and what its lossy storage costs (docs/teacher_cache.md).

    python tools/bench_cache.py step [--iters 60] [--batch 64] [--out FILE]
    python tools/bench_cache.py precision [--iters 100] [--teacher-checkpoint PTH] [--out FILE]
    python tools/bench_cache.py matrix [CSV]

``step``: the ViT -> test_resnet pair of the CPU matrix (configs/plug_and_play/cls/cpu_vit.py ->
cpu_resnet.py, random weights: a step's cost does not depend on them), KD on the logits, on a
generated 10-class set: the student alone, the distilled run live, the same run writing a new
cache and reading it, each ``--iters`` iterations with the same seed and batches. Prints each
run's median seconds per iteration (MMEngine's timer: data loading included) and the ratios, and
checks that the read run ends with the live run's student, bit for bit.

``precision``: the quick-start pair (configs/quickstart: the resnet10t teacher, trained here for
600 iterations unless ``--teacher-checkpoint`` gives it; the plain-ViT student of
student_plain_vit.py) distilled with KD (tau 4): the live run, then runs reading caches stored in
float16, bfloat16 and with the top-5 logits; for each, the largest difference of any logged loss
over the run and the final top-1 against the live run. Then the KD-loss error of top-k storage
itself: on the validation set, with the live run's final student, ``|KD(s, topk(t)) - KD(s, t)| /
KD(s, t)`` for k = 5 and 10 at tau 1 and 4 (the quick-start set has 10 classes: top-10 keeps them
all), and the bytes per sample of each storage.

``matrix``: from a plug-and-play CSV (default results/cpu/plug_and_play.csv), the wall time its
training took and an estimate of what it would have taken with one cache per (pair, seed): each
distilled run but the first of its (task, pair, seed) without the teacher's part of the step
(``iters x teacher_forward_s`` of its row: an estimate, the cache's own reading cost left out).

The figures are meaningful on an otherwise idle machine. ``--out`` also writes the report there
(never over an existing file).
"""
import argparse
import csv
import os
import os.path as osp
import platform
import shutil
import sys
import tempfile
from collections import defaultdict

import torch
from mmengine.config import Config

from kdzoo import tasks
from kdzoo.experiments.matrix_report import CACHED_RUN
from kdzoo.experiments.runs import budget_options, student_of, train_run
from kdzoo.teacher_cache import CacheSpec, sample_bytes, topk_compress, topk_expand
from kdzoo.toydata import make_shapes_dataset
from kdzoo.wrappers import unwrap

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
KD = [dict(student='logits', teacher='logits', loss=dict(type='KDLoss', tau=4.0), name='kd')]
METRIC = 'cls/top1'


def data_options(data):
    return {'train_dataloader.dataset.root': data['train'],
            'val_dataloader.dataset.root': data['val'],
            'test_dataloader.dataset.root': data['val']}


def write_config(path, base, teacher, checkpoint=None):
    """A config distilling ``base``'s student from ``teacher`` (a config path) with KD."""
    teacher_cfg = dict(config=teacher)
    if checkpoint:
        teacher_cfg['checkpoint'] = checkpoint
    with open(path, 'w') as f:
        f.write(f"_base_ = [{base!r}]\n"
                f"distill_cfg = dict(teacher={teacher_cfg!r}, losses={KD!r}, "
                "teacher_check=False)\n")
    return path


def run(config, work_dir, options, cache=None, student_only=False):
    """Train; returns ``(runner, result, logged losses per iteration)``."""
    options = dict(options)
    if cache:
        options['distill_cfg.teacher.cache'] = cache
    runner, result = train_run(config, work_dir, options, METRIC, scale=1.0,
                               student_only=student_only)
    return runner, result, logged_losses(runner)


def logged_losses(runner):
    """``{key: [value per iteration]}`` of the loss values MMEngine's message hub holds."""
    scalars = runner.message_hub.log_scalars
    return {key: list(buffer.data[0]) for key, buffer in scalars.items()
            if key.startswith('train/') and 'loss' in key}


def student_state(runner):
    return {k: v.clone() for k, v in student_of(runner.model).state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def machine():
    return (f'{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, '
            f'load per core {os.getloadavg()[0] / (os.cpu_count() or 1):.2f}')


# -- step ------------------------------------------------------------------------------------
def bench_step(args):
    root = tempfile.mkdtemp(prefix='kdzoo_bench_cache_')
    data = make_shapes_dataset(osp.join(root, 'data'), num_classes=10, per_class=(64, 2))
    student = osp.join(REPO, 'configs/plug_and_play/cls/cpu_resnet.py')
    teacher = osp.join(REPO, 'configs/plug_and_play/cls/cpu_vit.py')
    config = write_config(osp.join(root, 'kd.py'), student, teacher)
    options = dict(budget_options(Config.fromfile(config), args.iters, evals=1, seed=0),
                   **data_options(data), **{'train_dataloader.batch_size': args.batch})
    cache = osp.join(root, 'cache')
    runs = {}
    for name, kwargs in (('alone', dict(student_only=True)), ('live', {}),
                         ('write', dict(cache=cache)), ('read', dict(cache=cache))):
        runner, result, _ = run(config, osp.join(root, name), options, **kwargs)
        runs[name] = (result.iter_s, student_state(runner))
        print(f'{name}: {result.iter_s * 1000:.1f} ms per iteration', flush=True)
    exact = same_state(runs['live'][1], runs['read'][1])
    alone, live, write, read = (runs[k][0] for k in ('alone', 'live', 'write', 'read'))
    lines = [
        f'teacher cache, step cost: ViT (cpu_vit.py) -> test_resnet (cpu_resnet.py), KD tau 4, '
        f'batch {args.batch}, {args.iters} iterations, random weights ({machine()})',
        f'  student alone   {alone * 1000:8.1f} ms/it',
        f'  distilled live  {live * 1000:8.1f} ms/it   / alone {live / alone:.3f}',
        f'  writing cache   {write * 1000:8.1f} ms/it   / live  {write / live:.3f}',
        f'  reading cache   {read * 1000:8.1f} ms/it   / alone {read / alone:.3f}   '
        f'/ live {read / live:.3f}',
        f'  read run == live run (student state dict, bit for bit): {exact}']
    shutil.rmtree(root, ignore_errors=True)
    return lines, exact


# -- precision -------------------------------------------------------------------------------
def train_teacher(root, data):
    config = osp.join(REPO, 'configs/quickstart/teacher.py')
    cfg = Config.fromfile(config)
    options = dict(budget_options(cfg, 600, evals=1, seed=cfg.randomness.seed),
                   **data_options(data), **{'default_hooks.checkpoint.interval': 600})
    runner, result = train_run(config, osp.join(root, 'teacher'), options, METRIC)
    print(f'teacher: top-1 {result.last:.1f} % after 600 iterations', flush=True)
    return osp.join(root, 'teacher', 'iter_600.pth')


def max_difference(a, b):
    return max((abs(x - y) for key in a if key in b for x, y in zip(a[key], b[key])),
               default=float('nan'))


def topk_errors(runner, ks=(5, 10), taus=(1.0, 4.0)):
    """Mean and largest relative KD-loss error of top-k teacher logits on the val set."""
    from kdzoo.losses.kd import kd_loss
    model = unwrap(runner.model)
    model.eval()
    errors = defaultdict(list)
    with torch.no_grad():
        for batch in runner.val_dataloader:
            inputs = model.data_preprocessor(batch, False)['inputs']
            student = model.student(inputs)
            teacher = model.run_model(model.teacher, model.teacher_inputs(inputs), None, 'tensor')
            for k in ks:
                approx = (teacher if k >= teacher.shape[1] else
                          topk_expand(*topk_compress(teacher, k), teacher.shape[1], teacher.dtype))
                for tau in taus:
                    for s, t, a in zip(student, teacher, approx):
                        full = kd_loss(s[None], t[None], tau)
                        errors[k, tau].append(float((kd_loss(s[None], a[None], tau) - full).abs()
                                                    / full))
    return {key: (sum(v) / len(v), max(v)) for key, v in errors.items()}


def bench_precision(args):
    root = tempfile.mkdtemp(prefix='kdzoo_bench_cache_')
    data = make_shapes_dataset(osp.join(root, 'data'), num_classes=10, per_class=(200, 50))
    checkpoint = args.teacher_checkpoint or train_teacher(root, data)
    student = osp.join(REPO, 'configs/quickstart/student_plain_vit.py')
    teacher = osp.join(REPO, 'configs/quickstart/teacher.py')
    config = write_config(osp.join(root, 'kd.py'), student, teacher, checkpoint)
    cfg = Config.fromfile(config)
    options = dict(budget_options(cfg, args.iters, evals=1, seed=cfg.randomness.seed),
                   **data_options(data))
    live_runner, live, live_losses = run(config, osp.join(root, 'live'), options)
    lines = [f'teacher cache, lossy storage: quick-start pair (resnet10t -> ViT), KD tau 4, '
             f'{args.iters} iterations, seed {cfg.randomness.seed} ({machine()})',
             f'  live: top-1 {live.last:.2f} %']
    for label, cache in (('float16', dict(dtype='float16')), ('bfloat16', dict(dtype='bfloat16')),
                         ('top-5 float32', dict(topk=5)), ('top-5 float16',
                                                           dict(topk=5, dtype='float16'))):
        folder = osp.join(root, 'cache_' + label.replace(' ', '_'))
        run(config, osp.join(root, 'write'), options, dict(cache, dir=folder))
        _, result, losses = run(config, osp.join(root, 'read'), options, dict(cache, dir=folder))
        gain = result.last - live.last
        lines.append(f'  {label:14s} read: top-1 {result.last:.2f} % ({gain:+.2f}), largest '
                     'logged-loss difference over the run '
                     f'{max_difference(losses, live_losses):.3g}')
    lines.append('  KD-loss error of top-k teacher logits (val set, the live run\'s final student;'
                 ' mean / largest relative error):')
    for (k, tau), (mean, largest) in sorted(topk_errors(live_runner).items()):
        lines.append(f'    top-{k:<2d} tau {tau:g}: {mean:.2e} / {largest:.2e}')
    model = unwrap(live_runner.model)
    batch = next(iter(live_runner.val_dataloader))
    with torch.no_grad():
        inputs = model.data_preprocessor(batch, False)['inputs'][:1]
        logits = {'logits': model.run_model(model.teacher, model.teacher_inputs(inputs), None,
                                            'tensor')}
    for spec in (CacheSpec('x'), CacheSpec('x', 'float16'), CacheSpec('x', topk=5),
                 CacheSpec('x', 'float16', topk=5)):
        lines.append(f'  bytes per sample, 10-class logits, {spec.dtype}'
                     f'{f" top-{spec.topk}" if spec.topk else ""}: {sample_bytes(logits, spec)}')
    shutil.rmtree(root, ignore_errors=True)
    return lines, True


# -- matrix ----------------------------------------------------------------------------------
def bench_matrix(args):
    with open(args.csv) as f:
        rows = [r for r in csv.DictReader(f) if r.get('train_s')]
    if any(r.get('timed') == CACHED_RUN for r in rows):
        raise SystemExit(f'{args.csv} holds runs that used the teacher cache: their training '
                         'times leave the teacher out already; estimate from a matrix run with '
                         '--no-teacher-cache')
    total = sum(float(r['train_s']) for r in rows)
    first, saved = set(), 0.0
    for row in sorted(rows, key=lambda r: r.get('finished', '')):
        if row['loss'] == 'none' or not row.get('teacher_forward_s'):
            continue
        key = (row['task'], row['pair'], row['seed'], row['budget'])
        if key in first:
            saved += int(row['iters']) * float(row['teacher_forward_s'])
        first.add(key)
    name = osp.relpath(args.csv, REPO) if osp.abspath(args.csv).startswith(REPO) else args.csv
    return [f'teacher cache, estimate for {name}: {len(rows)} runs trained in '
            f'{total / 60:.1f} min; with one cache per (task, pair, seed, budget) about '
            f'{(total - saved) / 60:.1f} min ({saved / 60:.1f} min of teacher forward passes '
            'not run; the cache\'s reading cost not counted)'], True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    step = commands.add_parser('step', help='step cost with and without the cache')
    step.add_argument('--iters', type=int, default=60)
    step.add_argument('--batch', type=int, default=64)
    precision = commands.add_parser('precision', help='16-bit and top-k storage vs live')
    precision.add_argument('--iters', type=int, default=100)
    precision.add_argument('--teacher-checkpoint')
    matrix = commands.add_parser('matrix', help='the matrix wall time with a cache (estimate)')
    matrix.add_argument('csv', nargs='?', default=osp.join(REPO, 'results/cpu/plug_and_play.csv'))
    for sub in (step, precision, matrix):
        sub.add_argument('--out', help='also write the report here (never over a file)')
    args = parser.parse_args(argv)
    if args.out and osp.exists(args.out):
        parser.error(f'--out {args.out} exists; give a new file')
    tasks.get('cls')
    lines, ok = dict(step=bench_step, precision=bench_precision, matrix=bench_matrix)[
        args.command](args)
    report = '\n'.join(lines)
    print(report)
    if args.out:
        with open(args.out, 'x') as f:
            f.write(report + '\n')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
