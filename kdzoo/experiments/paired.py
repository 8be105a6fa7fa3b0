"""A paired, multi-seed comparison of one distilling config with its student trained alone.

For each seed: the student alone (the config without ``distill_cfg``) and the distilled student,
same iterations and schedule, same initial student weights (saved once per seed, loaded into both
arms), same batches in the same order with the same augmentations (the seeded data stream of
:mod:`kdzoo.data_stream`); plus, once, the teacher's metric on the validation set. Every finished
run is one row of ``compare.csv`` at once (the file replaced whole, each row checksummed:
:mod:`kdzoo.experiments.rows`); a rerun skips the rows already there, so a killed comparison
resumes with the missing runs only.

Reuse is keyed by what produced a result (:mod:`kdzoo.experiments.fingerprint`): every row, and
each seed's saved initial student, carries the fingerprint of the resolved config (cfg-options
and budget included), the teacher checkpoint's bytes, the metric, the budget, the precision
(``--amp``) and the data (the loaders' folders' files and sizes). A work dir holds
the results of one fingerprint: a run with another stops before training, naming what differs
(old results are never replaced nor mixed into a verdict). Rows written before fingerprints
existed (no ``fingerprint``) are legacy: kept and reported as such, never reused. A lock file
(``.compare.lock``) keeps a second compare off the same work dir. ``compare.md`` and
``compare.png`` (:mod:`kdzoo.experiments.compare_report`) are written from the CSV.
"""
import json
import math
import os
import os.path as osp
import time

import torch

from kdzoo import tasks
from kdzoo.experiments.fingerprint import Fingerprint, flat, legacy, refusal
from kdzoo.experiments.lock import folder_lock
from kdzoo.experiments.rows import ROW_SHA, append_row, check_csv, read_rows, repair_rows
from kdzoo.experiments.runs import (
    budget_options,
    check_init_file,
    config_sha,
    resolved_config,
    teacher_metric,
    train_run,
)
from kdzoo.hashing import data_paths, data_sha, file_sha, qualified_name
from kdzoo.patches import unformatted_config_dumps
from kdzoo.schedule import is_iteration_based
from kdzoo.teacher_cache_fill import cache_options

CSV_NAME, MD_NAME, PNG_NAME = 'compare.csv', 'compare.md', 'compare.png'
LOCK_NAME = '.compare.lock'
COLUMNS = ['task', 'config', 'arm', 'seed', 'budget', 'metric_name', 'last', 'best', 'curve',
           'iters', 'seconds', 'iter_s', 'init_sha', 'batches_sha', 'finished', 'fingerprint',
           'fingerprint_parts', ROW_SHA]
ARMS = ('alone', 'distilled')


# ----------------------------------------------------------------------------- prerequisites
def missing_inputs(cfg):
    """What the comparison needs and does not find: data folders / files and a local teacher
    checkpoint, as ``[description]``."""
    missing = [f'{kind} {path} ({key})' for key, path, kind in data_paths(cfg)
               if not (osp.isdir(path) if kind == 'folder' else osp.isfile(path))]
    checkpoint = cfg.distill_cfg.get('teacher', {}).get('checkpoint')
    if checkpoint and '://' not in checkpoint and not osp.isfile(checkpoint):
        missing.append(f'teacher checkpoint {checkpoint} (distill_cfg.teacher.checkpoint)')
    return missing


def check_inputs(cfg, config, tool='compare'):
    """Stop with an error naming what is missing and the command that makes it; ``tool`` names
    the command line that asks (the messages start with it)."""
    if 'distill_cfg' not in cfg:
        raise SystemExit(f'{tool}: {config} has no distill_cfg; {tool} needs a distilling config '
                         '(docs/distill_cfg.md)')
    missing = missing_inputs(cfg)
    if missing:
        made_by = cfg.get('setup_command')
        fix = (f'Make them first: {made_by}' if made_by else
               'Make them first (tools/make_toy_data.py writes the generated sets; train the '
               'teacher with tools/train.py on its config), or point the config at them with '
               '--cfg-options')
        raise SystemExit(f'{tool}: {config} needs inputs that do not exist (from '
                         f'{os.getcwd()}):\n  ' + '\n  '.join(missing) + f'\n{fix}.')


# ------------------------------------------------------------------------------------- rows
def key_of(row):
    return row['arm'], str(row['seed']), row['budget']


def curve_text(curve):
    return ' '.join(f'{it}:{value:.6g}' for it, value in curve)


def parse_curve(text):
    return [(int(i), float(v)) for i, v in (p.split(':') for p in text.split())] if text else []


# ----------------------------------------------------------------------------------- running
def budget_name(cfg, iters, evals):
    """``<length><it|ep>/<evaluations>ev``: the evaluations the run makes, which are fewer than
    ``evals`` when they do not divide the length (every ``ceil(length / evals)`` iterations or
    epochs, and at the end; :func:`kdzoo.experiments.runs.budget_options`)."""
    unit = 'it' if is_iteration_based(cfg) else 'ep'
    total = iters or (cfg.train_cfg.max_iters if unit == 'it' else cfg.train_cfg.max_epochs)
    return f'{total}{unit}/{math.ceil(total / math.ceil(total / evals))}ev'


def fingerprint_of(config, cfg, cfg_options, iters, evals, metric, scale, amp=False):
    """The comparison's :class:`~kdzoo.experiments.fingerprint.Fingerprint`: every run of it
    (teacher, both arms, every seed) has it; the seed and the arm are the row's key."""
    options = dict(cfg_options or {}, **budget_options(cfg, iters, evals))
    del options['randomness.seed']  # per row (its key)
    resolved = resolved_config(config, options)
    teacher = (resolved.get('distill_cfg') or {}).get('teacher') or {}
    checkpoint = teacher.pop('checkpoint', None)  # its bytes are the teacher part, not its path
    parts = dict(config=config_sha(resolved, None),
                 teacher=file_sha(checkpoint) if checkpoint else 'none',
                 metric=f'{metric}*{scale:g}', budget=budget_name(cfg, iters, evals),
                 precision='amp' if amp else 'fp32', data=data_sha(data_paths(resolved)))
    options.pop('distill_cfg.teacher.checkpoint', None)
    return Fingerprint(parts, flat(resolved_config_options(options)), flat(resolved))


def resolved_config_options(options):
    """The cfg-options as JSON values (as the resolved config holds them)."""
    return json.loads(json.dumps(options, sort_keys=True, default=qualified_name))


def compare(config, cfg, seeds, iters=None, evals=3, work_dir='work_dirs/compare', amp=False,
            metric=None, workers=None, verbose=False, cfg_options=None, teacher_cache=None):
    """Run every missing row of the comparison; returns ``(rows of this fingerprint and legacy
    rows, ran anything)``. Stops (``SystemExit``) before training when the work dir is in use by
    another compare or holds rows of another fingerprint.

    ``cfg`` is ``config`` loaded with ``cfg_options`` (which every run also gets).
    ``teacher_cache``: a folder; the distilled arm of seed ``s`` uses the teacher-output cache
    ``<teacher_cache>/seed<s>`` (``<teacher_cache>/seed<s>/<name>`` per teacher of
    ``distill_cfg.teachers``; :func:`kdzoo.teacher_cache_fill.cache_options`, the config's cache
    storage kept), which other comparisons of the same teachers and data share; without it, a
    teacher's own cache folder in the config holds ``seed<s>`` (one cache holds one seed).
    """
    check_inputs(cfg, config)
    if amp and not torch.cuda.is_available():  # before the teacher's row, not at the first arm
        raise SystemExit('compare: --amp needs a CUDA GPU (MMEngine\'s AmpOptimWrapper); none is '
                         'visible here. Compare without --amp on the CPU.')
    task = tasks.of_config(cfg)
    metric, scale = (metric, 1.0) if metric else (task.metric, task.metric_scale)
    budget = budget_name(cfg, iters, evals)
    if not budget.endswith(f'/{evals}ev'):
        print(f'compare: --evals {evals} does not divide the run: {budget} (an evaluation every '
              f'{budget_options(cfg, iters, evals)["train_cfg.val_interval"]} and at the end)',
              flush=True)
    csv_path = osp.join(work_dir, CSV_NAME)
    lock = folder_lock(work_dir, osp.join(work_dir, LOCK_NAME), 'compare')
    with lock, unformatted_config_dumps():
        fingerprint = fingerprint_of(config, cfg, cfg_options, iters, evals, metric, scale,
                                     amp)
        check_csv(csv_path, COLUMNS, 'compare', '--work-dir')
        repair_rows(csv_path)
        rows = read_rows(csv_path)
        other = [r for r in rows if not legacy(r) and r['fingerprint'] != fingerprint.value]
        if other:
            raise SystemExit(refusal('compare', work_dir, csv_path, other, fingerprint,
                                     '--work-dir'))
        for seed in seeds:
            saved_for = check_init_file(init_file_of(work_dir, seed), fingerprint.value)
            if saved_for:
                raise SystemExit(
                    f'compare: {init_file_of(work_dir, seed)} was saved by a compare of another '
                    f'setup (fingerprint {saved_for}, this run {fingerprint.value}; its rows are '
                    f'no longer in {csv_path}); it is never reused for another setup: give '
                    'this run a new --work-dir.')
        fingerprint.save(work_dir)
        ran = run_missing(config, cfg, seeds, iters, evals, work_dir, amp, metric, scale, workers,
                          verbose, cfg_options, teacher_cache, dict(
                              task=task.name, config=config, budget=budget, metric_name=metric,
                              fingerprint=fingerprint.value,
                              fingerprint_parts=fingerprint.parts_text), rows)
    rows = [r for r in read_rows(csv_path) if legacy(r) or r['fingerprint'] == fingerprint.value]
    return rows, ran


def init_file_of(work_dir, seed):
    return osp.join(work_dir, f'seed{seed}', 'student_init.pth')


def run_missing(config, cfg, seeds, iters, evals, work_dir, amp, metric, scale, workers, verbose,
                cfg_options, teacher_cache, base, rows):
    """Train the runs of this fingerprint that ``rows`` lack, each appended as it finishes;
    returns whether any ran. A distilled arm reads its seed's teacher-output cache in
    ``teacher_cache`` (a folder, or ``None``); it does not enter the fingerprint (an exact
    cache changes no result, a lossy one counts by the config's storage settings:
    :func:`kdzoo.experiments.runs.cache_storage`)."""
    csv_path = osp.join(work_dir, CSV_NAME)
    done = {key_of(r) for r in rows if r.get('fingerprint') == base['fingerprint']}
    ran = False
    if not any(arm == 'teacher' for arm, _, _ in done):
        options = dict(cfg_options or {}, **budget_options(cfg, iters, evals, 0, workers,
                                                           verbose))
        start = time.perf_counter()
        value = teacher_metric(config, osp.join(work_dir, 'teacher_check'), options, metric,
                               scale)
        print(f'[compare] teacher {metric} = {value:.2f}', flush=True)
        append_row(csv_path, COLUMNS, dict(base, arm='teacher', seed='-', last=value,
                                           best=value, seconds=time.perf_counter() - start,
                                           finished=time.strftime('%Y-%m-%d %H:%M:%S')))
        ran = True
    for seed in seeds:
        for arm in ARMS:
            if (arm, str(seed), base['budget']) in done:
                print(f'[compare] seed {seed}, {arm}: done already (in {CSV_NAME}), skipped',
                      flush=True)
                continue
            options = dict(cfg_options or {}, **budget_options(cfg, iters, evals, seed,
                                                               workers, verbose))
            if arm == 'distilled':
                options['distill_cfg.teacher_check'] = False  # measured once, above
                options.update(cache_options(cfg, teacher_cache, seed))
            print(f'[compare] seed {seed}, {arm}: {base["budget"]}', flush=True)
            _, result = train_run(config, osp.join(work_dir, f'seed{seed}_{arm}'), options,
                                  metric, scale, student_only=arm == 'alone',
                                  init_file=init_file_of(work_dir, seed), amp=amp,
                                  init_fingerprint=base['fingerprint'])
            append_row(csv_path, COLUMNS, dict(
                base, arm=arm, seed=seed, last=result.last, best=result.best,
                curve=curve_text(result.curve), iters=result.iters, seconds=result.seconds,
                iter_s=result.iter_s, init_sha=result.init_sha,
                batches_sha=result.batches_sha, finished=time.strftime('%Y-%m-%d %H:%M:%S')))
            print(f'[compare] seed {seed}, {arm}: {metric} {result.last:.2f} (best of '
                  f'{len(result.curve)}: {result.best:.2f}) in {result.seconds:.0f} s',
                  flush=True)
            ran = True
    return ran


def seed_pairs(rows, seeds=None):
    """``[(seed, alone row, distilled row)]`` of the seeds with both arms finished, by seed."""
    by_seed = {}
    for row in rows:
        if row['arm'] in ARMS and (seeds is None or row['seed'] in {str(s) for s in seeds}):
            by_seed.setdefault(row['seed'], {})[row['arm']] = row
    return [(int(seed), arms['alone'], arms['distilled'])
            for seed, arms in sorted(by_seed.items(), key=lambda kv: int(kv[0]))
            if set(arms) == set(ARMS)]
