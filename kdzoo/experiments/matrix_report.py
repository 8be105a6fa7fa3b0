"""The plug-and-play matrix's report: ``plug_and_play.md`` (per task and pair: each loss's metric
and gain over the student alone, mean ± sample std over seeds, the paired 95 % interval and
verdict, its step costs; rows planned but not run yet; teachers too weak to count) and
``plug_and_play.png`` (each loss's mean gain with its spread), rewritten from the CSV only."""
import json
import math
import os.path as osp
import statistics

from kdzoo.experiments.fingerprint import LEGACY_NOTE, legacy
from kdzoo.experiments.rows import ROW_SHA, number, read_rows
from kdzoo.experiments.stats import RULE, paired_summary

CSV_NAME, MD_NAME, PNG_NAME = 'plug_and_play.csv', 'plug_and_play.md', 'plug_and_play.png'
PLAN_NAME = 'plug_and_play_plan.json'
COLUMNS = ['task', 'pair', 'teacher', 'student', 'loss', 'seed', 'budget', 'teacher_iters',
           'teacher_dtype', 'iters', 'metric_name', 'metric', 'teacher_metric',
           'teacher_metric_bf16', 'student_alone_metric', 'gain', 'train_s', 'iter_s',
           'student_step_s', 'teacher_forward_s', 'distill_step_s', 'loss_s', 'step_ratio',
           'loss_share', 'load_per_core', 'timed', 'init_sha', 'batches_sha', 'device',
           'finished', 'fingerprint', 'fingerprint_parts', ROW_SHA]
KEY = ('task', 'pair', 'loss', 'seed', 'budget', 'teacher_iters', 'teacher_dtype')
# The step costs of a row (kdzoo.experiments.timing) and how they were timed (``timed``): at the
# end of the row's own run (AFTER_TRAINING), re-timed later on freshly built models of its configs
# ('retimed <date> on <device>', RETIMED), or empty: before this column existed, by the earlier
# method (EARLIER_METHOD).
STEP_COLUMNS = ('student_step_s', 'teacher_forward_s', 'distill_step_s', 'loss_s', 'step_ratio',
                'loss_share', 'load_per_core')
AFTER_TRAINING, RETIMED = 'after training', 'retimed'
# a run that read or wrote its pair's shared teacher cache: its step costs timed after it on a
# freshly built live model; its own iteration times are not a live run's
CACHED_RUN = 'after training, on a live model (the run used the teacher cache)'
EARLIER_METHOD = ('the student step with SGD at learning rate 0, not the run\'s optimizer, and the '
                  'teacher\'s whole forward (`teacher(mode=\'tensor\')`), not its part of the step')
STEP_RATIO_TARGET, LOSS_SHARE_TARGET = 1.10, 0.03
TEACHER_MARGIN = 5.0  # points the teacher must beat the student alone by
BUSY_LOAD = 1.25  # 1-minute load per core above which a run's step times are not kdzoo's cost
BUSY_RUNS = ('† timed while other work shared the machine (1-minute load per core above '
             f'{BUSY_LOAD:g}) or with the load not recorded: these times are inflated, not '
             'kdzoo\'s cost.')
BUSY_NOTE = BUSY_RUNS[:-1] + '; shown only where no quiet run of that loss exists.'


def key_of(row):
    return tuple(str(row[k]) for k in KEY)


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


def read_plan(out):
    path = osp.join(out, PLAN_NAME)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def plan_rows(plan, rows):
    """The row groups to report: the plan's (task, pair) entries, then any other group in the
    CSV; each ``dict(task, pair, budget, teacher_iters, teacher_dtype, losses, seeds)``."""
    groups_out, seen = [], set()
    for entry in (plan or {}).get('rows', []):
        groups_out.append(entry)
        seen.add((entry['task'], entry['pair'], entry['budget']))
    for row in rows:
        key = (row['task'], row['pair'], row['budget'])
        if key not in seen and row['loss'] != 'none':
            seen.add(key)
            group = [r for r in rows if (r['task'], r['pair'], r['budget']) == key]
            groups_out.append(dict(task=key[0], pair=key[1], budget=key[2],
                                   teacher_iters=row['teacher_iters'],
                                   teacher_dtype=row['teacher_dtype'],
                                   losses=list(dict.fromkeys(r['loss'] for r in group)),
                                   seeds=len({r['seed'] for r in group})))
    return groups_out


def timed_quietly(row):
    """Whether the row's step costs were measured on an otherwise idle machine."""
    return number(row.get('load_per_core')) <= BUSY_LOAD


def run_ratio(row, alone):
    """The whole run's cost, a cross-check of the one-batch step ratio: the distilled run's
    median iteration (data loading and hooks included) / (the student-alone run's, same seed, +
    the teacher's part of the step)."""
    return number(row['iter_s']) / (number(alone['iter_s']) + number(row['teacher_forward_s']))


def step_cost_cells(runs, alone_by_seed):
    """Mean step ratio, run ratio and loss share over the quietly timed runs (for the run
    ratio, whose student-alone run was quiet too); over all runs, marked †, when none was."""
    quiet = [r for r in runs if timed_quietly(r)]
    mark = '' if quiet else ' †'
    ratio = mean_spread([number(r['step_ratio']) for r in quiet or runs])[0]
    share = mean_spread([number(r['loss_share']) for r in quiet or runs])[0]
    paired = [r for r in runs if r['seed'] in alone_by_seed and r.get('timed') != CACHED_RUN]
    both = [r for r in paired if timed_quietly(r) and timed_quietly(alone_by_seed[r['seed']])]
    whole = mean_spread([run_ratio(r, alone_by_seed[r['seed']]) for r in both or paired])[0]
    return (f'{ratio:.3f}{mark}', f'{whole:.3f}' + ('' if both else ' †'),
            f'{share:.2%}{mark}')


def loss_line(loss, runs, alone_by_seed, expected, metric_fmt):
    """One table row: seeds done / expected, metric, gain, paired 95 % interval and verdict."""
    done = f'{len(runs)}/{expected}'
    if not runs:
        return f'| {loss} | {done} | not run yet | | | | | | |'
    gains = [number(r['metric']) - number(alone_by_seed[r['seed']]['metric'])
             for r in runs if r['seed'] in alone_by_seed]
    if gains:
        summary = paired_summary(gains)
        interval = ('—' if summary.n == 1 else
                    f'[{summary.low:+.2f}, {summary.high:+.2f}]')
        gain, verdict = pm(gains), summary.verdict
    else:
        interval, gain, verdict = '—', '—', 'no student-alone run of these seeds yet'
    ratio, whole, share = step_cost_cells(runs, alone_by_seed)
    return (f'| {loss} | {done} | {metric_fmt(runs)} | {gain} | {interval} | {verdict} | '
            f'{ratio} | {whole} | {share} |')


def step_cost_lines(rows):
    """The runs that miss a step-cost target, with where the extra time goes and the machine's
    load while they were timed."""
    lines = []
    for r in rows:
        if r['loss'] == 'none':
            continue
        ratio, share = number(r['step_ratio']), number(r['loss_share'])
        if not (ratio > STEP_RATIO_TARGET or share > LOSS_SHARE_TARGET):
            continue
        student, teacher = number(r['student_step_s']), number(r['teacher_forward_s'])
        step, losses = number(r['distill_step_s']), number(r['loss_s'])
        extra = step - student - teacher
        load = number(r.get('load_per_core'))
        load = (('not recorded' if math.isnan(load) else f'{load:.2f}')
                + ('' if timed_quietly(r) else ' †'))
        lines.append(
            f'| {r["task"]} | {r["pair"]} | {r["budget"]} | {r["loss"]} | {r["seed"]} | '
            f'{ratio:.3f} | '
            f'{share:.1%} | {load} | {1000 * extra:.1f} ms over student + teacher, of which losses '
            f'{1000 * losses:.1f} ms, connectors / readouts / taps '
            f'{1000 * (extra - losses):.1f} ms |')
    return lines


def timing_lines(rows):
    """How the reported rows' step costs were timed (their ``timed`` column): re-timed (when, on
    what, which pairs), at the end of their run, or by the earlier method."""
    lines = []
    timed = [r for r in rows if r.get('student_step_s')]
    for stamp, runs in groups([r for r in timed if r.get('timed', '').startswith(RETIMED)],
                              ('timed',)).items():
        where = ', '.join(f'{task}/{pair} ({len(group)})' for (task, pair), group
                          in groups(runs, ('task', 'pair')).items())
        lines.append(
            f'Step costs re-timed {stamp[0][len(RETIMED):].strip()}: {len(runs)} runs, {where}, '
            'by `kdzoo plug-and-play --retime` on freshly built models of each run\'s configs '
            '(random weights: a step\'s cost does not depend on them; nothing trained), one '
            'timing per task, pair, loss, '
            'teacher precision and budget, shared by the rows of its seeds; their metrics, gains '
            'and training times are the original runs\', and their run ratio divides those runs\' '
            'iteration times by the re-timed teacher step.')
    cached = [r for r in timed if r.get('timed') == CACHED_RUN]
    if cached:
        lines.append(f'{len(cached)} distilled runs read (or, the first of their pair and seed, '
                     'wrote) the shared teacher cache: their step costs were timed after the run '
                     'on a freshly built live model of their config, and their own iteration '
                     'times, which leave out the teacher, are not in the run ratio.')
    after = [r for r in timed if r.get('timed') == AFTER_TRAINING]
    if after and len(after) < len(timed):
        lines.append(f'Step costs of {len(after)} runs timed at the end of their own run.')
    earlier = [r for r in timed if not r.get('timed')]
    if earlier:
        lines.append(f'Step costs of {len(earlier)} runs were timed by an earlier method '
                     f'({EARLIER_METHOD}): not comparable with the method above; '
                     '`kdzoo plug-and-play --retime` times them again.')
    return [line for text in lines for line in (text, '')]


def reported(rows):
    """``(the rows the report is made of, {(task, pair, budget): legacy rows left out})``: per
    (task, pair, budget), the rows with a fingerprint, else the legacy ones."""
    left, kept = {}, set()
    for key, group in groups(rows, ('task', 'pair', 'budget')).items():
        current = [r for r in group if not legacy(r)]
        kept.update(id(r) for r in current or group)
        if current and len(current) < len(group):
            left[key] = len(group) - len(current)
    return [r for r in rows if id(r) in kept], left


def write_report(out):
    """Rewrite ``plug_and_play.md`` and ``.png`` from the whole CSV (and the plan, when one was
    written); returns their paths."""
    every = read_rows(osp.join(out, CSV_NAME))
    rows, left_out = reported(every)
    plan = read_plan(out)
    lines = ['# kdzoo plug-and-play matrix', '',
             f'Generated by `kdzoo plug-and-play` from `{CSV_NAME}` ({len(every)} runs'
             + (f', {sum(map(legacy, every))} of them legacy' if any(map(legacy, every)) else '')
             + ') and '
             f'`{PLAN_NAME}`; rewritten after every run: do not edit.', '',
             'Per loss: seeds done / planned; the metric and the gain over the student trained '
             'alone, mean ± sample standard deviation over seeds, in points; the gain is paired '
             'per seed (same initial student, same batches and augmentations, same schedule). '
             + RULE + ' A pair whose teacher does not beat the student alone by '
             f'{TEACHER_MARGIN:g} points is marked "teacher too weak": its gains are no evidence '
             f'about distillation. Step ratio = distillation step / (student step + teacher '
             'step) on one training batch, median of repeats, target ≤ '
             f'{STEP_RATIO_TARGET:.2f}: the student step is its own training step with an '
             'optimizer built from the run\'s optimizer config (same type and settings), the '
             'teacher step the teacher\'s part of the distillation step as the step runs it (its '
             'normalisation, no grad, its taps; only what its items read), the distillation step '
             'the whole step with the run\'s optimizer. Run ratio = the distilled run\'s median '
             'iteration / (the student-alone run\'s of the same seed + teacher step), data '
             'loading included, a cross-check; loss share = the losses\' '
             f'forward + backward / distillation step, target ≤ {LOSS_SHARE_TARGET:.0%}.', '']
    devices = sorted({r['device'] for r in rows})
    lines += [f'Profile: {(plan or {}).get("profile", "not recorded")}. Devices: '
              f'{", ".join(devices) or "none yet"}.', ''] + timing_lines(rows)
    panels = []
    for entry in plan_rows(plan, rows):
        task, pair, budget = entry['task'], entry['pair'], entry['budget']
        mine = [r for r in rows if (r['task'], r['pair'], r['budget']) == (task, pair, budget)]
        alone = [r for r in mine if r['loss'] == 'none']
        distilled = [r for r in mine if r['loss'] != 'none'
                     and (str(r['teacher_iters']), r['teacher_dtype'])
                     == (str(entry['teacher_iters']), entry['teacher_dtype'])]
        first = (distilled or mine or [{}])[0]
        metric = first.get('metric_name', 'metric')
        by_teacher = groups(distilled, ('teacher_metric',))
        teacher = min((number(k[0]) for k in by_teacher), default=number(
            first.get('teacher_metric')))
        student = mean_spread([number(r['metric']) for r in alone])[0]
        names = (f' ({first["teacher"]} → {first["student"]})' if 'teacher' in first
                 and first.get('teacher') else '')
        lines += [f'## {task}: {pair}{names}, {budget}, teacher {entry["teacher_iters"]} '
                  f'iterations, {entry["teacher_dtype"]}', '']
        if mine and all(map(legacy, mine)):
            lines += [LEGACY_NOTE, '']
        elif (task, pair, budget) in left_out:
            lines += [f'{left_out[task, pair, budget]} legacy row(s) of this setting (written '
                      'before rows carried their fingerprint) are left out: never reused, not '
                      'counted.', '']
        if len(by_teacher) > 1:
            lines.append(f'Teacher {metric}: ' + ', '.join(
                f'{number(k[0]):.2f} (seeds {", ".join(sorted({r["seed"] for r in runs}))})'
                for k, runs in by_teacher.items())
                + ': the teacher was trained again between sittings (its scratch folder did not '
                'survive, or its config or options changed) and came out different; each '
                'seed\'s runs share one teacher, so every gain is still paired, but the seeds '
                'differ by more than their seed.')
        elif math.isfinite(teacher):
            lines.append(f'Teacher {metric}: {teacher:.2f} (bf16 autocast: '
                         f'{first.get("teacher_metric_bf16") or "not measured"}).')
        else:
            lines.append('Teacher: not trained yet.')
        weak = (math.isfinite(teacher) and math.isfinite(student)
                and teacher - student < TEACHER_MARGIN)
        title = (f'{task}: {pair}\n{budget}, teacher {entry["teacher_iters"]} it, '
                 f'{entry["teacher_dtype"]}' + ('\nTEACHER TOO WEAK: no evidence' if weak else ''))
        panels.append((title, distilled, weak))
        if weak:
            lines.append(f'**Teacher too weak: {teacher:.2f} vs the student alone {student:.2f} '
                         f'(less than {TEACHER_MARGIN:g} points better): the gains below are no '
                         'evidence about distillation.**')
        lines += ['', f'| loss | seeds | {metric} | gain | 95 % interval | verdict | step ratio | '
                  'run ratio | loss share |', '|---|---:|---:|---:|---|---|---:|---:|---:|',
                  f'| none (student alone) | {len(alone)}/{entry["seeds"]} | '
                  + (pm([number(r['metric']) for r in alone]) if alone else 'not run yet')
                  + ' | — | — | — | — | — | — |']
        alone_by_seed = {r['seed']: r for r in alone}
        table = [loss_line(loss, [r for r in distilled if r['loss'] == loss], alone_by_seed,
                           entry['seeds'], lambda rs: pm([number(r['metric']) for r in rs]))
                 for loss in entry['losses'] if loss != 'none']
        lines += table + (['', BUSY_NOTE] if any(' †' in line for line in table) else []) + ['']
    missed = step_cost_lines(rows)
    lines += ['## Runs that miss a step-cost target', '']
    lines += (['| task | pair | budget | loss | seed | step ratio | loss share | load per core | '
               'where the time goes |', '|---|---|---|---|---:|---:|---:|---:|---|'] + missed
              + ['', BUSY_RUNS]) if missed else ['None so far.']
    with open(osp.join(out, MD_NAME), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return osp.join(out, MD_NAME), write_chart(panels, osp.join(out, PNG_NAME))


def write_chart(panels, path):
    """One panel per table of the report, in its order (``panels``: ``(title, distilled rows,
    teacher too weak)``), up to 3 a line: each loss's mean gain, error bar ± sample std over
    seeds; grey where the teacher is too weak. ``None`` (with a message) where matplotlib is not
    installed."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print(f'matplotlib is not installed: no {PNG_NAME} (run --report-only where it is)')
        return None
    panels = [panel for panel in panels if panel[1]]
    cols = max(1, min(3, len(panels)))
    lines = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(lines, cols, figsize=(5 * cols, 4.2 * lines), squeeze=False)
    for ax, (title, runs, weak) in zip(axes.flat, panels):
        by_loss = groups(runs, ('loss',))
        stats = [mean_spread([number(r['gain']) for r in grp]) for grp in by_loss.values()]
        ax.bar([k[0] for k in by_loss], [m for m, _ in stats], yerr=[s for _, s in stats],
               capsize=4, color='tab:gray' if weak else 'tab:blue')
        ax.axhline(0, color='black', linewidth=0.8)
        ax.set_title(title, fontsize=9, color='tab:red' if weak else 'black')
        ax.set_ylabel(f'gain in {runs[0]["metric_name"]} over student alone')
        ax.tick_params(axis='x', labelrotation=30)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    if not panels:
        axes[0][0].text(0.5, 0.5, 'no distillation runs yet', ha='center', va='center')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
