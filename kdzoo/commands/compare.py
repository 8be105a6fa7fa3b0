"""Did distillation help? A paired, multi-seed verdict for any config with ``distill_cfg``.

    kdzoo compare CONFIG [--seeds 0,1,2] [--iters N] [--evals K] [--work-dir D]
                  [--cfg-options k=v ...] [--amp] [--metric KEY] [--smoke]
                  [--teacher-cache DIR] [--baseline OTHER_CONFIG]

(``python tools/compare.py`` in a checkout is the same command.)

For each seed, the student alone (CONFIG without ``distill_cfg``) and the distilled student train
with the same iterations and schedule, the same initial student weights and the same batches and
augmentations; each is evaluated at K points (default 3). Once, each teacher is evaluated on the
validation set (a multi-teacher config, ``distill_cfg.teachers``: one row per teacher, arm
``teacher:<name>``). Then, per seed, the gain ``d = distilled - alone`` (last evaluation), and
over the seeds its mean, sample std and 95 % interval (t distribution) with the verdict: helped
(interval above 0), hurt (below), no clear effect, or one seed: cannot tell.

Writes ``compare.csv`` (one row per run, written whole as it finishes: a rerun after a kill runs
only what is missing, and a row cut off by an older version or an edit is named, removed and run
again), ``compare.md`` and ``compare.png`` in the work dir (default
``work_dirs/compare/<config name>``), and prints the table. ``--smoke``: 2 iterations, one
evaluation, seeds 0 and 1 unless given (the test suite runs it).

A work dir holds one setup: each row records the fingerprint of the resolved config (with
``--cfg-options``, ``--iters``, ``--evals``), the teacher checkpoint's bytes, the metric and the
data (files and sizes). A rerun
reuses the rows of the same fingerprint (adding seeds reuses the others); with anything else
changed it stops before training, naming what differs: give a new ``--work-dir`` (old results
are never replaced). ``--cfg-options train_cfg.max_iters=N`` is ``--iters N``: the schedule is
rescaled either way. One compare at a time per work dir (``.compare.lock``).

``--teacher-cache DIR``: the distilled arm of seed s stores the teacher's outputs in (or, when
they are there, reads them from) the teacher-output cache ``DIR/seed<s>`` (``DIR/<name>/seed<s>``
for each teacher of ``distill_cfg.teachers``; docs/teacher_cache.md); ``kdzoo cache-teacher
CONFIG --seeds ... --cache DIR`` fills the same folders ahead. Without it, a config with its own
``distill_cfg.teacher.cache`` gets the same layout under that folder (a cache holds one seed).
Comparisons of the same teacher, data and seeds share it (e.g. a sweep of loss weights in
separate work dirs): the teacher runs in the first one only. The cache is not part of the
fingerprint (a float32 cache changes no result; a 16-bit or top-k one counts by its dtype and
topk, set in the config's ``distill_cfg.teacher.cache``, which this option's folder replaces).

``--baseline OTHER_CONFIG``: is CONFIG better than another distilling config of the same student
(e.g. a two-teacher config against the best single-teacher one)? Each seed also trains
OTHER_CONFIG's distilled student (arm ``baseline``) from the same initial student on the same
batches for the same budget (``--cfg-options`` apply to it too), and the report adds, per seed,
the difference ``d = distilled - baseline`` with its mean ± std, 95 % interval and verdict by the
same rule ("helped": CONFIG beats the baseline). OTHER_CONFIG must train the same student:
when its student model, data, evaluator or schedule (as the budget resolves them) differ from
CONFIG's, compare stops before training, naming both configs and the keys that differ. The
baseline's rows carry CONFIG's fingerprint plus the baseline config's and its teacher
checkpoint's: CONFIG's rows are reused by every baseline compared in the same work dir (one
compare call per baseline), and the rows of another baseline, or of this one since changed,
stay in the CSV, never reused. The baseline's teacher runs live (``--teacher-cache`` is
CONFIG's teacher's) unless OTHER_CONFIG sets its own ``cache`` (per seed, as above).
"""
import argparse
import os.path as osp

from kdzoo.experiments.arguments import config_name, non_negative_int, positive_int, seed_list
from kdzoo.experiments.compare_report import summary_lines, write_chart, write_markdown
from kdzoo.experiments.paired import compare
from kdzoo.runner import load_config


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(prog='kdzoo compare', description=__doc__.split('\n\n')[0])
    parser.add_argument('config', type=config_name, help='a config with distill_cfg')
    parser.add_argument('--seeds', type=seed_list,
                        help='comma-separated seeds (default 0,1,2; --smoke 0,1)')
    parser.add_argument('--iters', type=positive_int,
                        help='training iterations of every run (default: the config\'s own; its '
                        'iteration-based schedule is stretched to them)')
    parser.add_argument('--evals', type=positive_int,
                        help='evaluations per run, evenly spaced (default 3; --smoke 1)')
    parser.add_argument('--work-dir', help='default: work_dirs/compare/<config name>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys of every run (both arms and the teacher)')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (CUDA)')
    parser.add_argument('--metric', help='validation metric key (default: cls/top1, mIoU or '
                        'coco/bbox_mAP by task)')
    parser.add_argument('--workers', type=non_negative_int,
                        help='data loader workers of every run')
    parser.add_argument('--verbose', action='store_true', help='MMEngine\'s INFO log of each run')
    parser.add_argument('--smoke', action='store_true', help='2 iterations, 1 evaluation')
    parser.add_argument('--teacher-cache', metavar='DIR', help='teacher-output caches of the '
                        'distilled arms, DIR/seed<s> per seed, shared with other comparisons of '
                        'the same teacher and data (filled ahead by kdzoo cache-teacher)')
    parser.add_argument('--baseline', metavar='OTHER_CONFIG', type=config_name,
                        help='also train OTHER_CONFIG\'s '
                        'distilled student (the same student, data and schedule) in every seed '
                        'and report the paired difference CONFIG - OTHER_CONFIG')
    args = parser.parse_args(argv)
    iters = args.cfg_options.pop('train_cfg.max_iters', None)
    if iters is not None:  # the same run as --iters: the schedule is rescaled to it
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
            parser.error(f'--cfg-options train_cfg.max_iters={iters}: give a positive integer')
        if args.iters is not None and args.iters != iters:
            parser.error(f'--iters {args.iters} and --cfg-options train_cfg.max_iters={iters} '
                         'disagree: give one of them')
        args.iters = iters
    return args


def main(argv=None):
    args = parse_args(argv)
    seeds = args.seeds or ([0, 1] if args.smoke else [0, 1, 2])
    iters = args.iters or (2 if args.smoke else None)
    evals = args.evals or (1 if args.smoke else 3)
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'compare', name)
    cfg = load_config(args.config, args.cfg_options)
    rows, ran = compare(args.config, cfg, seeds, iters, evals, work_dir, args.amp, args.metric,
                        args.workers, args.verbose, args.cfg_options, args.teacher_cache,
                        args.baseline)
    md = write_markdown(rows, work_dir, seeds)  # unchanged when it says the same
    png = osp.join(work_dir, 'compare.png')
    if ran or not osp.isfile(png):
        png = write_chart(rows, work_dir, seeds)
    print('\n' + '\n'.join(summary_lines(rows, seeds)))
    print(f'\n{osp.join(work_dir, "compare.csv")}, {md}, {png}')
    return rows
