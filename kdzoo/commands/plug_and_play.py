"""The plug-and-play matrix: task x heterogeneous pair x loss x seed on generated data.

    kdzoo plug-and-play [--profile gpu|cpu|smoke|FILE] [--tasks cls,seg,det]
                        [--pairs P,...] [--losses L,...] [--seeds N] [--iters N]
                        [--teacher-iters N] [--budget-s S] [--out results/]
                        [--device cuda|cpu] [--teacher-bf16] [--max-wall-s S]
                        [--smoke] [--report-only] [--retime]
                        [--no-teacher-cache]

(``python tools/plug_and_play.py`` in a checkout is the same command.)

The command line of the experiment engine's matrix (:mod:`kdzoo.experiments.matrix`: it writes
each task's generated set, trains and caches each pair's teacher, trains the student alone and
distilled with each loss, paired within a seed, measures the step costs, and appends one row per
finished run to ``<out>/plug_and_play.csv``, written whole; a rerun skips the rows already there
made by the same setup, stops before training when a row of the same key was made otherwise (a
changed config, recipe, data size, metric or budget: give a new ``--out``), and runs again rows
written before fingerprints existed, which stay in the report marked legacy). The profile
(``configs/plug_and_play/profiles/``, from the installed kdzoo: :mod:`kdzoo.configs`) says
what a run trains, its ``out`` a folder of the current directory; the options below replace its
settings. After every row ``<out>/plug_and_play.md`` (tables: metric and gain over the student
alone, mean +- sample std over seeds, the paired verdict; step costs; teachers) and
``<out>/plug_and_play.png`` are rewritten from the whole CSV; ``--report-only`` only rewrites
them. One run at a time per ``--out`` (a lock file in ``<out>/tmp``). Both first relabel a CSV
written before the model labels named each model's type and key options (``matrix.relabel``;
idempotent).

``--retime``: measure the step costs of the rows already in ``<out>/plug_and_play.csv`` again
(``matrix.retime``), on freshly built models of each row's configs (random weights: a step's cost
does not depend on them; nothing is trained, nothing downloaded: the tasks' generated sets are
written under ``<out>/tmp`` when missing), one timing per (task, pair, loss, teacher precision,
budget) shared by its seeds' rows, ``--timing-repeats`` repetitions each; the rows of
``--tasks`` / ``--pairs`` / ``--losses`` (default: all). Only the step-cost columns change, and
``timed`` (``retimed <date> on <device>``); each row's metrics, gain, fingerprint and every other
field stay, its checksum recomputed; then the markdown and PNG are rewritten. A row whose
fingerprint is not what the profile's configs give now is left as it is, said.

The distilled arms of a (pair, seed) share one teacher-output cache under
``<out>/tmp/teacher_cache/<task>/<pair>_<teacher iters>it/<key>/seed<s>`` (docs/teacher_cache.md):
the first stores every teacher readout the others read, so the teacher runs in the training
steps of one arm per (pair, seed). It is float32 and holds every class: each row is
bit-identical to a live row and has its fingerprint (rows made without it are reused). The step
costs stay those of the live step (measured on a freshly built model of the arm's config without
the cache); the report's run ratio leaves those runs out (their iterations skip the teacher).
``--no-teacher-cache``: every arm runs its teacher; so does every arm under ``--budget-s`` (a
wall-time budget would give the arms reading the cache more iterations than live ones).

``--teacher-bf16``: the teacher runs under ``torch.autocast(bfloat16)`` in the distillation
steps (the losses compute in float32 as always); rows record ``teacher_dtype=bf16`` and the
teacher's bf16 metric beside its float32 one. ``--smoke`` (``--profile smoke``): tiny models and
data, 2 iterations, losses ``none`` and ``MSDCRD``, one seed, on the CPU, classification plus
seg / det where their adapters import (the test suite runs it).
"""
import argparse
import os.path as osp
import time

from kdzoo.experiments import matrix
from kdzoo.experiments.arguments import non_negative_float, non_negative_int, positive_int
from kdzoo.experiments.lock import folder_lock
from kdzoo.experiments.matrix_report import CSV_NAME, write_report
from kdzoo.patches import unformatted_config_dumps

# what a run trains, which --retime reads from each row instead (and --max-wall-s)
RUN_ONLY = ('seeds', 'iters', 'teacher_iters', 'budget_s', 'teacher_bf16', 'max_wall_s')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='kdzoo plug-and-play',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--profile', default='gpu',
                        help=f'what a full run trains: one of {matrix.profile_names()} (files in '
                        'configs/plug_and_play/profiles/) or the path of a profile file; gpu '
                        '(the default) writes to results/, cpu (sized for a 2-core machine) to '
                        'results/cpu/')
    parser.add_argument('--tasks', help='comma-separated: cls,seg,det (default: all of the '
                        'profile; --smoke: cls and those whose adapter imports)')
    parser.add_argument('--pairs', help='comma-separated pair names (default: all of each task)')
    parser.add_argument('--losses', help='comma-separated loss names of the profile; "none" '
                        '(the student alone, needed for the gains) is always run (default: the '
                        'profile\'s)')
    parser.add_argument('--seeds', type=positive_int, help='seeds 0..N-1 (default: the profile\'s)')
    parser.add_argument('--iters', type=positive_int,
                        help='student iterations (default: the profile\'s, per task or per pair)')
    parser.add_argument('--teacher-iters', type=positive_int,
                        help='teacher iterations (default: the profile\'s, per task or per pair)')
    parser.add_argument('--budget-s', type=non_negative_float, default=0.0,
                        help='also stop each student run after S seconds, then validate')
    parser.add_argument('--out', help='CSV, markdown and PNG here; data, teachers, runs under '
                        'OUT/tmp (default: the profile\'s, e.g. results/ or results/cpu/)')
    parser.add_argument('--device', choices=['cuda', 'cpu'],
                        help='default: the profile\'s, else cuda when available')
    parser.add_argument('--teacher-bf16', action='store_true',
                        help='teacher forward under bf16 autocast (and its bf16 metric measured)')
    parser.add_argument('--batch', type=positive_int,
                        help='training batch (default: the profile\'s, else the config\'s)')
    parser.add_argument('--workers', type=non_negative_int,
                        help='data loader workers (default: 8 on cuda, 0 on cpu)')
    parser.add_argument('--timing-repeats', type=positive_int,
                        help='step-cost repetitions (default: the profile\'s, 20; --smoke 2)')
    parser.add_argument('--max-wall-s', type=non_negative_float, default=0.0,
                        help='start no run that might end after S seconds (rerun to continue)')
    parser.add_argument('--verbose', action='store_true',
                        help='MMEngine\'s INFO log of every run (progress, ETA); default WARNING')
    parser.add_argument('--smoke', action='store_true', help='the same as --profile smoke')
    parser.add_argument('--no-teacher-cache', dest='teacher_cache', action='store_false',
                        help='every distilled arm runs its teacher (default: the arms of a (pair, '
                        'seed) share one teacher-output cache; the rows are the same)')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--report-only', action='store_true',
                      help='only relabel the CSV\'s models and rewrite the markdown and PNG')
    mode.add_argument('--retime', action='store_true',
                      help='only measure the step costs of the CSV\'s rows again, on freshly '
                      'built models of their configs (no training), then rewrite the markdown '
                      'and PNG')
    args = parser.parse_args(argv)
    if args.smoke:
        args.profile = 'smoke'
    if args.retime:
        per_row = [f'--{name.replace("_", "-")}' for name in RUN_ONLY if getattr(args, name)]
        if per_row:
            parser.error(f'--retime takes the seeds, budget and teacher precision from each row '
                         f'of the CSV: drop {" ".join(per_row)}')
    return args



def resolve(args):
    """The engine's options of the parsed command line."""
    given = {k: v for k, v in vars(args).items() if k not in ('smoke', 'report_only', 'retime')}
    return matrix.resolve(**given)


def main(argv=None):
    args = parse_args(argv)
    if args.report_only:
        out = osp.abspath(args.out or matrix.load_profile(args.profile)['out'])
        with folder_lock(out, osp.join(out, 'tmp', matrix.LOCK_NAME), 'plug-and-play'):
            matrix.relabel(out, args.profile)  # rewrites the CSV: not while a run writes it
            return write_report(out)
    opts = resolve(args)
    if args.retime:
        return retime(opts)
    print(f'plug-and-play ({opts.profile} profile): tasks {opts.tasks}, losses {opts.losses}, '
          f'seeds {opts.seeds}, {opts.device_name}, out {opts.out}', flush=True)
    start = time.perf_counter()
    with folder_lock(opts.out, osp.join(opts.out, 'tmp', matrix.LOCK_NAME), 'plug-and-play'):
        matrix.relabel(opts.out, args.profile)
        matrix.write_plan(opts)
        with unformatted_config_dumps():
            summary = matrix.run_matrix(opts)
        md, png = write_report(opts.out)
    print(f'{len(summary["done"])} run(s) done, {len(summary["skipped"])} skipped, in '
          f'{time.perf_counter() - start:.0f} s; {osp.join(opts.out, CSV_NAME)}, {md}, {png}')
    return summary


def retime(opts):
    """``--retime``: the step costs of ``opts.out``'s rows measured again, the report rewritten."""
    print(f'plug-and-play --retime ({opts.profile} profile): step costs of the rows of '
          f'{osp.join(opts.out, CSV_NAME)}, {opts.timing_repeats} repetitions, '
          f'{opts.device_name}', flush=True)
    start = time.perf_counter()
    with folder_lock(opts.out, osp.join(opts.out, 'tmp', matrix.LOCK_NAME), 'plug-and-play'):
        with unformatted_config_dumps():
            summary = matrix.retime(opts)
        md, png = write_report(opts.out)
    print(f'{len(summary["retimed"])} row(s) re-timed by {summary["timings"]} timing(s) in '
          f'{time.perf_counter() - start:.0f} s; {osp.join(opts.out, CSV_NAME)}, {md}, {png}')
    return summary
