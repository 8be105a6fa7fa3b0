"""The quick-start: heterogeneous distillation on a generated image set, minutes on a CPU.

    kdzoo quickstart [--fast] [--data-dir D] [--work-dir W]

(``python tools/quickstart.py`` in a checkout is the same command.)

1. generates a deterministic ImageFolder set of procedurally drawn shapes and textures
   (``kdzoo.toydata.make_shapes_dataset``; no download);
2. trains a teacher of one family (``kdzoo::quickstart/teacher.py``: the installed kdzoo's
   configs/quickstart/teacher.py, :mod:`kdzoo.configs`);
3. trains the student, of another family, alone (``kdzoo::quickstart/student.py``);
4. trains the same student with the same budget, seed, initial weights and batches, distilled
   with each of the three papers' losses: MSDCRD, LFCC and MLDR-KD (``msdcrd.py``, ``lfcc.py``,
   ``mldrkd.py`` of ``kdzoo::quickstart/``);
then prints a table of teacher / student-alone / distilled accuracy with wall times and, under it,
the CPU model (seeded runs are bit-identical on one CPU model, not across models), and states
each distilled run's result with the experiment engine's rule (:mod:`kdzoo.experiments.stats`):
from one seed it cannot tell, and it shows the gain (``kdzoo compare
kdzoo::quickstart/<loss>.py --seeds 0,1,2`` gives a verdict over seeds). Every run is the
engine's (:func:`kdzoo.experiments.runs.train_run` with
:func:`~kdzoo.experiments.runs.budget_options`: the config's seed and schedule, validated once at
the end). ``--fast`` shrinks everything to seconds (the test suite runs it).

The data and the runs go to ``data/quickstart`` and ``work_dirs/quickstart`` of the current
directory (``--data-dir`` / ``--work-dir``): the folders the quick-start configs read, so
``kdzoo train kdzoo::quickstart/msdcrd.py`` and ``kdzoo compare kdzoo::quickstart/msdcrd.py``
from the same directory find the data and the teacher checkpoint.
"""
import argparse
import os.path as osp
import time

import torch
from mmengine.config import Config

from kdzoo import tasks
from kdzoo.configs import config_file
from kdzoo.experiments.labels import config_label
from kdzoo.experiments.runs import budget_options, train_run
from kdzoo.experiments.stats import paired_summary
from kdzoo.experiments.timing import cpu_model
from kdzoo.toydata import make_shapes_dataset

# The configs in configs/quickstart are written for these 10 classes.
FULL = dict(num_classes=10, per_class=(200, 50), teacher_iters=600, student_iters=500, batch=64)
FAST = dict(num_classes=10, per_class=(2, 1), teacher_iters=2, student_iters=2, batch=8)
# the distilled arms: (config in configs/quickstart, the loss's name in the table)
LOSSES = [('msdcrd', 'MSDCRD'), ('lfcc', 'LFCC'), ('mldrkd', 'MLDR-KD')]


def run(config, work_dir, data_dir, iters, batch, checkpoint=None):
    """Train ``kdzoo::quickstart/<config>`` on the set in ``data_dir`` for ``iters`` iterations
    (its own seed); ``checkpoint``: the teacher checkpoint a distilling config reads. Returns
    (val top-1, seconds, the last checkpoint's path)."""
    path = config_file(f'kdzoo::quickstart/{config}')
    cfg = Config.fromfile(path)
    options = dict(budget_options(cfg, iters, evals=1, seed=cfg.randomness.seed, verbose=True), **{
        'train_dataloader.dataset.root': osp.join(data_dir, 'train'),
        'val_dataloader.dataset.root': osp.join(data_dir, 'val'),
        'test_dataloader.dataset.root': osp.join(data_dir, 'val'),
        'train_dataloader.batch_size': batch,
        # the last checkpoint is kept: the distilling configs read the teacher's
        'default_hooks.checkpoint.interval': iters})
    if checkpoint:
        options['distill_cfg.teacher.checkpoint'] = checkpoint
    runner, result = train_run(path, work_dir, options, tasks.of_config(cfg).metric)
    return result.last, result.seconds, osp.join(work_dir, f'iter_{runner.iter}.pth')


def result_line(label, gain, config):
    """The distilled run's result by the engine's rule: one seed cannot tell; the gain shown,
    and the command that gives the verdict over seeds (``config``: its file in
    configs/quickstart, without ``.py``)."""
    verdict = paired_summary([gain]).verdict
    return (f'{label}: {verdict} ({gain:+.1f} points vs the student alone, same iterations, seed '
            f'and data order; over seeds: kdzoo compare kdzoo::quickstart/{config}.py --seeds '
            '0,1,2).')


def main(argv=None):
    parser = argparse.ArgumentParser(prog='kdzoo quickstart',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--fast', action='store_true', help='tiny sizes: seconds (for tests)')
    parser.add_argument('--data-dir', default=osp.join('data', 'quickstart'),
                        help='the generated set (default: data/quickstart, which the configs read)')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'quickstart'),
                        help='the runs (default: work_dirs/quickstart, where the distilling '
                        'configs read the teacher checkpoint)')
    args = parser.parse_args(argv)
    size = FAST if args.fast else FULL

    start = time.time()
    make_shapes_dataset(args.data_dir, num_classes=size['num_classes'], per_class=size['per_class'])
    print(f'data: {size["num_classes"]} classes, {size["per_class"][0]} train / '
          f'{size["per_class"][1]} val images per class, 32x32, in {args.data_dir} '
          f'({time.time() - start:.0f} s)', flush=True)

    rows = []
    t_top1, t_sec, t_ckpt = run('teacher.py', osp.join(args.work_dir, 'teacher'), args.data_dir,
                                size['teacher_iters'], size['batch'])
    rows.append(('teacher', config_label(config_file('kdzoo::quickstart/teacher.py')),
                 size['teacher_iters'], t_top1, t_sec))
    student = config_label(config_file('kdzoo::quickstart/student.py'))
    s_top1, s_sec, _ = run('student.py', osp.join(args.work_dir, 'student'), args.data_dir,
                           size['student_iters'], size['batch'])
    rows.append(('student alone', student, size['student_iters'], s_top1, s_sec))
    distilled = []
    for config, label in LOSSES:
        top1, sec, _ = run(f'{config}.py', osp.join(args.work_dir, config), args.data_dir,
                           size['student_iters'], size['batch'], checkpoint=t_ckpt)
        rows.append((f'student + {label}', student, size['student_iters'], top1, sec))
        distilled.append((label, top1, config))

    print(f'\nkdzoo quick-start ({torch.get_num_threads()} CPU threads, total '
          f'{time.time() - start:.0f} s)')
    print('| run | model | iterations | val top-1 (%) | wall time (s) |')
    print('|---|---|---:|---:|---:|')
    for name, model, iters, top1, sec in rows:
        print(f'| {name} | {model} | {iters} | {top1:.1f} | {sec:.0f} |')
    print(f'\nCPU: {cpu_model()}. Seeded runs repeat bit for bit on this CPU model; on another '
          'model the digits differ by a few points (its convolution kernels differ).\n')
    for label, top1, config in distilled:
        print(result_line(label, top1 - s_top1, config))
    if t_top1 <= s_top1:
        print('note: the teacher is not better than the student alone in this budget, so there is '
              'little to distil.')
    return rows
