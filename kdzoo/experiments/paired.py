"""A paired, multi-seed comparison of one distilling config with its student trained alone (and,
with a baseline, with another distilling config of the same student).

For each seed: the student alone (the config without ``distill_cfg``) and the distilled student,
same iterations and schedule, same initial student weights (saved once per seed, loaded into both
arms), same batches in the same order with the same augmentations (the seeded data stream of
:mod:`kdzoo.data_stream`); plus, once, each teacher's metric on the validation set (one row per
teacher: arm ``teacher`` for ``distill_cfg.teacher``, ``teacher:<name>`` for each of
``distill_cfg.teachers``). Every finished run is one row of ``compare.csv`` at once (the file
replaced whole, each row checksummed: :mod:`kdzoo.experiments.rows`); a rerun skips the rows
already there, so a killed comparison resumes with the missing runs only.

A baseline (``kdzoo compare CONFIG --baseline OTHER``) adds, per seed, a third arm
``baseline``: OTHER's distilled student, trained from the same saved initial student on the same
batches for the same budget, so ``CONFIG - OTHER`` is a paired difference too. OTHER must train
the same student (:func:`check_baseline`: its student model, data, evaluator and schedule as
the budget resolves them equal CONFIG's). The baseline's rows carry CONFIG's fingerprint parts
plus ``baseline_config`` and ``baseline_teacher`` (:func:`baseline_fingerprint`): the rows of
another baseline (or of OTHER since changed) stay in the CSV beside them, never reused, and the
rows of CONFIG are shared by every baseline compared in the work dir.

Reuse is keyed by what produced a result (:mod:`kdzoo.experiments.fingerprint`): every row, and
each seed's saved initial student, carries the fingerprint of the resolved config (cfg-options
and budget included), the teacher checkpoints' bytes, the metric, the budget, the precision
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
from kdzoo.adapters import is_distill_model_cfg
from kdzoo.experiments.fingerprint import (
    Fingerprint,
    flat,
    keys_differing,
    legacy,
    parse_parts,
    refusal,
)
from kdzoo.experiments.lock import folder_lock
from kdzoo.experiments.rows import ROW_SHA, append_row, check_csv, read_rows, repair_rows
from kdzoo.experiments.runs import (
    budget_options,
    check_init_file,
    config_sha,
    resolved_config,
    teacher_metrics,
    train_run,
)
from kdzoo.hashing import data_paths, data_sha, file_sha, qualified_name, text_sha
from kdzoo.patches import unformatted_config_dumps
from kdzoo.runner import load_config
from kdzoo.schedule import is_iteration_based
from kdzoo.teacher import teacher_configs
from kdzoo.teacher_cache_fill import cache_options
from kdzoo.teacher_names import teacher_key

CSV_NAME, MD_NAME, PNG_NAME = 'compare.csv', 'compare.md', 'compare.png'
LOCK_NAME = '.compare.lock'
COLUMNS = ['task', 'config', 'arm', 'seed', 'budget', 'metric_name', 'last', 'best', 'curve',
           'iters', 'seconds', 'iter_s', 'init_sha', 'batches_sha', 'finished', 'fingerprint',
           'fingerprint_parts', ROW_SHA]
ARMS = ('alone', 'distilled')
BASELINE = 'baseline'
# what the pairing of a baseline's runs with the config's needs equal (the student model of the
# explicit form is model.student): the same student, batches, metric, optimizer and schedule
PAIRED_KEYS = ('model', 'train_dataloader', 'val_dataloader', 'val_evaluator', 'optim_wrapper',
               'train_cfg', 'param_scheduler')


# ----------------------------------------------------------------------------- prerequisites
def missing_inputs(cfg):
    """What the comparison needs and does not find: data folders / files and each teacher's
    local checkpoint, as ``[description]``. ``ValueError`` when ``distill_cfg`` names no teacher
    or both forms (:func:`kdzoo.teacher.teacher_configs`)."""
    missing = [f'{kind} {path} ({key})' for key, path, kind in data_paths(cfg)
               if not (osp.isdir(path) if kind == 'folder' else osp.isfile(path))]
    multi = 'teachers' in cfg.distill_cfg
    for name, teacher in teacher_configs(cfg.distill_cfg).items():
        checkpoint = teacher.get('checkpoint') if isinstance(teacher, dict) else None
        if checkpoint and '://' not in checkpoint and not osp.isfile(checkpoint):
            missing.append(f'teacher checkpoint {checkpoint} '
                           f'({teacher_key(name, multi)}.checkpoint)')
    return missing


def check_inputs(cfg, config, tool='compare'):
    """Stop with an error naming what is missing and the command that makes it; ``tool`` names
    the command line that asks (the messages start with it)."""
    if 'distill_cfg' not in cfg:
        raise SystemExit(f'{tool}: {config} has no distill_cfg; {tool} needs a distilling config '
                         '(docs/distill_cfg.md)')
    try:
        missing = missing_inputs(cfg)
    except ValueError as err:
        raise SystemExit(f'{tool}: {config}: {err}') from None
    if missing:
        made_by = cfg.get('setup_command')
        fix = (f'Make them first: {made_by}' if made_by else
               'Make them first (a generated set: kdzoo make-data cls|seg|det ROOT; a teacher: '
               'kdzoo train on its config), or point the config at them with --cfg-options')
        raise SystemExit(f'{tool}: {config} needs inputs that do not exist (from '
                         f'{os.getcwd()}):\n  ' + '\n  '.join(missing) + f'\n{fix}.')


# ------------------------------------------------------------------------------------- rows
def key_of(row):
    return row['arm'], str(row['seed']), row['budget']


def teacher_arm(name, multi):
    """The arm of teacher ``name``'s row: ``teacher`` for the one teacher of
    ``distill_cfg.teacher``, ``teacher:<name>`` for each of ``distill_cfg.teachers``."""
    return f'teacher:{name}' if multi else 'teacher'


def is_teacher_arm(arm):
    return arm == 'teacher' or arm.startswith('teacher:')


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
    distill_cfg = resolved.get('distill_cfg') or {}
    multi = 'teachers' in distill_cfg
    checkpoints = {}  # their bytes are the teacher part, not their paths
    if multi or 'teacher' in distill_cfg:
        for name, teacher in teacher_configs(distill_cfg).items():
            checkpoint = teacher.pop('checkpoint', None) if isinstance(teacher, dict) else None
            checkpoints[name] = file_sha(checkpoint) if checkpoint else 'none'
            options.pop(f'{teacher_key(name, multi)}.checkpoint', None)
    parts = dict(config=config_sha(resolved, None),
                 teacher=(text_sha(json.dumps(checkpoints, sort_keys=True)) if multi else
                          checkpoints.get('teacher', 'none')),
                 metric=f'{metric}*{scale:g}', budget=budget_name(cfg, iters, evals),
                 precision='amp' if amp else 'fp32', data=data_sha(data_paths(resolved)))
    return Fingerprint(parts, flat(resolved_config_options(options)), flat(resolved))


def resolved_config_options(options):
    """The cfg-options as JSON values (as the resolved config holds them)."""
    return json.loads(json.dumps(options, sort_keys=True, default=qualified_name))


def baseline_fingerprint(main, baseline, baseline_cfg, cfg_options, iters, evals, metric, scale,
                         amp=False):
    """The fingerprint of the baseline's rows: the comparison's ``main`` parts, plus the
    baseline config's ``baseline_config`` (resolved with the same options and budget) and
    ``baseline_teacher`` (its teacher checkpoint's bytes); its record is ``main``'s."""
    own = fingerprint_of(baseline, baseline_cfg, cfg_options, iters, evals, metric, scale, amp)
    return Fingerprint(dict(main.parts, baseline_config=own.parts['config'],
                            baseline_teacher=own.parts['teacher']), main.options, main.resolved)


def of_setup(row, fingerprint):
    """Whether ``row`` belongs to the comparison of ``fingerprint`` (its ``main`` one): its own
    row, or a baseline row of any baseline compared with it."""
    if row['arm'] != BASELINE:
        return row['fingerprint'] == fingerprint.value
    parts = parse_parts(row['fingerprint_parts'])
    return all(parts.get(key) == value for key, value in fingerprint.parts.items())


def student_setup(config, cfg, cfg_options, iters, evals):
    """The keys of :data:`PAIRED_KEYS` of ``config`` as a run of this budget resolves them (the
    explicit form's student as ``model``), flattened."""
    resolved = resolved_config(config, dict(cfg_options or {},
                                            **budget_options(cfg, iters, evals)))
    if is_distill_model_cfg(cfg):
        resolved['model'] = resolved['model']['student']
    return flat({key: resolved.get(key) for key in PAIRED_KEYS})


def check_baseline(config, cfg, baseline, baseline_cfg, cfg_options, iters, evals):
    """Stop (``SystemExit``) unless ``baseline`` is a distilling config with its inputs and the
    same student model, data, evaluator, optimizer and schedule as ``config`` (both with
    ``cfg_options`` and the budget): otherwise its arm would not start from the seed's saved
    student, see the same batches or be trained and measured the same way, and the difference
    would not be paired."""
    check_inputs(baseline_cfg, baseline, tool='compare')
    mine = student_setup(config, cfg, cfg_options, iters, evals)
    theirs = student_setup(baseline, baseline_cfg, cfg_options, iters, evals)
    if mine != theirs:
        raise SystemExit(
            f'compare: the baseline {baseline} does not train the same student as {config}: '
            f'{keys_differing(mine, theirs)} differ. The paired difference needs the same student '
            f'model, data, evaluator, optimizer and schedule ({", ".join(PAIRED_KEYS)}); give a '
            'baseline that differs from the config in its distill_cfg only (e.g. one sharing its '
            '_base_ files).')


def compare(config, cfg, seeds, iters=None, evals=3, work_dir='work_dirs/compare', amp=False,
            metric=None, workers=None, verbose=False, cfg_options=None, teacher_cache=None,
            baseline=None):
    """Run every missing row of the comparison; returns ``(rows of this fingerprint, of the
    baseline's and legacy rows, ran anything)``. Stops (``SystemExit``) before training when the
    work dir is in use by another compare or holds rows of another fingerprint, and when the
    baseline does not train the same student (:func:`check_baseline`).

    ``cfg`` is ``config`` loaded with ``cfg_options`` (which every run also gets).
    ``teacher_cache``: a folder; the distilled arm of seed ``s`` uses the teacher-output cache
    ``<teacher_cache>/seed<s>`` (``<teacher_cache>/<name>/seed<s>`` per teacher of
    ``distill_cfg.teachers``; :func:`kdzoo.teacher_cache_fill.cache_options`, the config's cache
    storage kept), which other comparisons of the same teachers and data share; without it, a
    teacher's own cache folder in the config holds ``seed<s>`` (one cache holds one seed).
    ``baseline``: another distilling config of the same student, whose distilled arm each seed
    also trains (loaded with ``cfg_options``; its teachers run live unless the baseline config
    sets their own ``cache``, laid out per seed as above).
    """
    check_inputs(cfg, config)
    baseline_cfg = load_config(baseline, cfg_options) if baseline else None
    if baseline:
        check_baseline(config, cfg, baseline, baseline_cfg, cfg_options, iters, evals)
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
        other = sorted((r for r in rows if not legacy(r) and not of_setup(r, fingerprint)),
                       key=lambda r: r['arm'] == BASELINE)  # the config's own rows named first
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
        base = dict(task=task.name, config=config, budget=budget, metric_name=metric,
                    fingerprint=fingerprint.value, fingerprint_parts=fingerprint.parts_text)
        ran = run_missing(config, cfg, seeds, iters, evals, work_dir, amp, metric, scale, workers,
                          verbose, cfg_options, teacher_cache, base, rows)
        values = {fingerprint.value}
        if baseline:
            own = baseline_fingerprint(fingerprint, baseline, baseline_cfg, cfg_options, iters,
                                       evals, metric, scale, amp)
            values.add(own.value)
            kept = [r for r in rows if r['arm'] == BASELINE and r['fingerprint'] != own.value]
            if kept:
                print(f'[compare] {len(kept)} baseline row(s) of another baseline or an earlier '
                      f'version of it (e.g. {kept[0]["config"]}, fingerprint '
                      f'{kept[0]["fingerprint"]}) stay in {CSV_NAME}, not reused', flush=True)
            ran = run_baseline(baseline, baseline_cfg, seeds, iters, evals, work_dir, amp,
                               metric, scale, workers, verbose, cfg_options, dict(
                                   base, config=baseline, fingerprint=own.value,
                                   fingerprint_parts=own.parts_text), rows,
                               fingerprint.value) or ran
    rows = [r for r in read_rows(csv_path) if legacy(r) or r['fingerprint'] in values]
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
    multi = 'teachers' in cfg.distill_cfg
    arms = {name: teacher_arm(name, multi) for name in teacher_configs(cfg.distill_cfg)}
    measured = {arm for arm, _, _ in done}
    missing = [name for name, arm in arms.items() if arm not in measured]
    if missing:
        options = dict(cfg_options or {}, **budget_options(cfg, iters, evals, 0, workers,
                                                           verbose))
        start = time.perf_counter()
        for name, value in teacher_metrics(config, osp.join(work_dir, 'teacher_check'), options,
                                           metric, scale, missing):
            print(f'[compare] teacher {f"{name} " if multi else ""}{metric} = {value:.2f}',
                  flush=True)
            append_row(csv_path, COLUMNS, dict(base, arm=arms[name], seed='-', last=value,
                                               best=value, seconds=time.perf_counter() - start,
                                               finished=time.strftime('%Y-%m-%d %H:%M:%S')))
            start = time.perf_counter()
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


def run_baseline(baseline, baseline_cfg, seeds, iters, evals, work_dir, amp, metric, scale,
                 workers, verbose, cfg_options, base, rows, init_fingerprint):
    """Train the baseline arms (``baseline``'s distilled student) that ``rows`` lack, each from
    its seed's saved initial student (saved for the comparison's fingerprint
    ``init_fingerprint``), appended as it finishes; returns whether any ran."""
    csv_path = osp.join(work_dir, CSV_NAME)
    done = {key_of(r) for r in rows if r.get('fingerprint') == base['fingerprint']}
    ran = False
    for seed in seeds:
        if (BASELINE, str(seed), base['budget']) in done:
            print(f'[compare] seed {seed}, {BASELINE}: done already (in {CSV_NAME}), skipped',
                  flush=True)
            continue
        options = dict(cfg_options or {}, **budget_options(baseline_cfg, iters, evals, seed,
                                                           workers, verbose))
        options['distill_cfg.teacher_check'] = False
        options.update(cache_options(baseline_cfg, None, seed))
        print(f'[compare] seed {seed}, {BASELINE} ({baseline}): {base["budget"]}', flush=True)
        _, result = train_run(baseline, osp.join(work_dir, f'seed{seed}_{BASELINE}'), options,
                              metric, scale, init_file=init_file_of(work_dir, seed), amp=amp,
                              init_fingerprint=init_fingerprint)
        append_row(csv_path, COLUMNS, dict(
            base, arm=BASELINE, seed=seed, last=result.last, best=result.best,
            curve=curve_text(result.curve), iters=result.iters, seconds=result.seconds,
            iter_s=result.iter_s, init_sha=result.init_sha, batches_sha=result.batches_sha,
            finished=time.strftime('%Y-%m-%d %H:%M:%S')))
        print(f'[compare] seed {seed}, {BASELINE}: {metric} {result.last:.2f} (best of '
              f'{len(result.curve)}: {result.best:.2f}) in {result.seconds:.0f} s', flush=True)
        ran = True
    return ran


def seed_pairs(rows, seeds=None):
    """``[(seed, alone row, distilled row)]`` of the seeds with both arms finished, by seed."""
    return arm_pairs(rows, ARMS, seeds)


def baseline_pairs(rows, seeds=None):
    """``[(seed, distilled row, baseline row)]`` of the seeds with both finished, by seed."""
    return arm_pairs(rows, ('distilled', BASELINE), seeds)


def arm_pairs(rows, arms, seeds=None):
    """``[(seed, row of arms[0], row of arms[1])]`` of the seeds (all, or ``seeds``) with both
    arms finished, by seed."""
    by_seed = {}
    for row in rows:
        if row['arm'] in arms and (seeds is None or row['seed'] in {str(s) for s in seeds}):
            by_seed.setdefault(row['seed'], {})[row['arm']] = row
    return [(int(seed), found[arms[0]], found[arms[1]])
            for seed, found in sorted(by_seed.items(), key=lambda kv: int(kv[0]))
            if set(found) == set(arms)]
