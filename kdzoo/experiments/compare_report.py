"""The comparison's report: the table and verdict (markdown, also printed), with a baseline the
table and verdict of the difference config - baseline, and the chart (PNG), written from
``compare.csv`` only (:mod:`kdzoo.experiments.paired`), never edited by hand."""
import math
import os.path as osp

from kdzoo.experiments.fingerprint import LEGACY_NOTE, legacy
from kdzoo.experiments.paired import (
    ARMS,
    BASELINE,
    MD_NAME,
    PNG_NAME,
    arm_pairs,
    baseline_pairs,
    is_teacher_arm,
    parse_curve,
    seed_pairs,
)
from kdzoo.experiments.rows import number
from kdzoo.experiments.stats import RULE, paired_summary

BASELINE_RULE = ('Baseline rule: the same rule on the difference d = distilled - baseline per seed '
                 '(both arms distilled, paired: same initial student, same batches): "helped" '
                 'if the 95 % interval is above 0 (the config beats the baseline), "hurt" if '
                 'below, "no clear effect" if it contains 0, "one seed: cannot tell" for n = 1.')


def fmt(value, digits=2, sign=False):
    if not math.isfinite(value):
        return '—'
    return f'{value:+.{digits}f}' if sign else f'{value:.{digits}f}'


def pairing_note(pairs):
    """Whether each seed's two arms started from the same student and saw the same batches."""
    init = all(a['init_sha'] == d['init_sha'] for _, a, d in pairs)
    batches = all(a['batches_sha'] == d['batches_sha'] for _, a, d in pairs)
    if init and batches:
        return ('Pairing checked: in every seed both arms started from the same student weights '
                'and saw the same first training batches (fingerprints `init_sha`, '
                '`batches_sha` in the CSV).')
    return ('**NOT PAIRED: in some seed the two arms differ in their initial student weights '
            f'({"equal" if init else "different"}) or first batches '
            f'({"equal" if batches else "different"}); the gains below are not paired.**')


def reported(rows):
    """``(the rows a report is made of, the legacy rows)``: the rows with a fingerprint, else
    the legacy ones."""
    old = [r for r in rows if legacy(r)]
    return [r for r in rows if not legacy(r)] or old, old


def summary_lines(rows, seeds=None):
    """The markdown table, the summary and the verdict, as lines: of the rows with a
    fingerprint (one, :mod:`kdzoo.experiments.paired`), legacy rows counted and left out; of
    the legacy rows, marked so, when there are no others."""
    rows, old = reported(rows)
    note = ([f'Legacy: {len(old)} row(s) of compare.csv were written before rows carried their '
             'fingerprint (what produced them); they are not in this table and never reused.']
            if old and rows is not old else
            [LEGACY_NOTE] if old else [])
    return summary_of(rows, seeds) + ([''] + note if note else [])


def teacher_values(rows):
    """``[(teacher name or None, metric)]`` of the teacher rows: ``None`` names the one teacher
    of ``distill_cfg.teacher`` (arm ``teacher``), a name each of ``distill_cfg.teachers`` (arm
    ``teacher:<name>``)."""
    return [(r['arm'].partition(':')[2] or None, number(r['last'])) for r in rows
            if is_teacher_arm(r['arm'])]


def summary_of(rows, seeds=None):
    teachers = teacher_values(rows)
    pairs = seed_pairs(rows, seeds)
    first = (pairs[0][1] if pairs else rows[0]) if rows else {}
    metric = first.get('metric_name', 'metric')
    lines = [f'Config: `{first.get("config", "?")}` ({first.get("task", "?")}), metric `{metric}` '
             f'on the validation set, budget {first.get("budget", "?")} (iterations or epochs / '
             'evaluations).',
             teacher_line(teachers), '',
             '| seed | alone (last) | distilled (last) | gain d (last) | alone (best) | '
             'distilled (best) | gain (best) |', '|---:|---:|---:|---:|---:|---:|---:|']
    gains = []
    for seed, alone, distilled in pairs:
        a_last, d_last = number(alone['last']), number(distilled['last'])
        a_best, d_best = number(alone['best']), number(distilled['best'])
        gains.append(d_last - a_last)
        lines.append(f'| {seed} | {fmt(a_last)} | {fmt(d_last)} | {fmt(d_last - a_last, sign=True)}'
                     f' | {fmt(a_best)} | {fmt(d_best)} | {fmt(d_best - a_best, sign=True)} |')
    lines.append('')
    if not gains:
        return lines + ['No seed has both arms finished yet.']
    lines.append(verdict_line(paired_summary(gains), 'gain'))
    alone_mean = sum(number(a['last']) for _, a, _ in pairs) / len(pairs)
    values = [value for _, value in teachers if math.isfinite(value)]
    if values and max(values) <= alone_mean:
        which = (f'the teacher ({fmt(values[0])}) is not' if teachers[0][0] is None else
                 f'no teacher ({", ".join(f"{n} {fmt(v)}" for n, v in teachers)}) is')
        lines.append(f'Note: {which} better than the student alone ({fmt(alone_mean)}) in this '
                     'budget: there is little to distil.')
    return lines + ['', RULE, 'The verdict uses the last evaluation; the best-of-K columns are '
                    'optimistic (the best of K evaluations, picked on the validation set '
                    'itself).', pairing_note(pairs)] + baseline_lines(rows, seeds)


def teacher_line(teachers):
    """``Teacher: 63.40.`` (the one teacher) or ``Teachers: cnn 63.40, vit 58.20.``."""
    if not teachers:
        return 'Teacher: not measured.'
    if teachers[0][0] is None:
        return f'Teacher: {fmt(teachers[0][1])}.'
    return 'Teachers: ' + ', '.join(f'{name} {fmt(value)}' for name, value in teachers) + '.'


def verdict_line(summary, noun):
    """The sentence of a :class:`~kdzoo.experiments.stats.PairedSummary` of per-seed ``noun``
    values (``'gain'``, ``'difference'``)."""
    if not math.isfinite(summary.mean):
        return f'{noun.capitalize()}s over {summary.n} seed(s): **{summary.verdict}**.'
    if summary.n == 1:
        return (f'{noun.capitalize()}: {fmt(summary.mean, sign=True)} points over 1 seed → '
                f'**{summary.verdict}**.')
    return (f'Mean {noun} over {summary.n} seeds: {fmt(summary.mean, sign=True)} ± '
            f'{fmt(summary.std)} (sample std); 95 % interval of the mean '
            f'[{fmt(summary.low, sign=True)}, {fmt(summary.high, sign=True)}] → '
            f'**{summary.verdict}**.')


def baseline_lines(rows, seeds=None):
    """The baseline's section (none without baseline rows): per seed the distilled arm, the
    baseline's and their difference, and the verdict of the difference."""
    named = [r for r in rows if r['arm'] == BASELINE]
    if not named:
        return []
    pairs = baseline_pairs(rows, seeds)
    lines = ['', f'Baseline: `{named[0]["config"]}`, distilled in every seed from the same '
             'initial student on the same batches for the same budget as the config.', '',
             '| seed | distilled (last) | baseline (last) | difference d (last) | '
             'distilled (best) | baseline (best) | difference (best) |',
             '|---:|---:|---:|---:|---:|---:|---:|']
    differences = []
    for seed, distilled, baseline in pairs:
        d_last, b_last = number(distilled['last']), number(baseline['last'])
        d_best, b_best = number(distilled['best']), number(baseline['best'])
        differences.append(d_last - b_last)
        lines.append(f'| {seed} | {fmt(d_last)} | {fmt(b_last)} | '
                     f'{fmt(d_last - b_last, sign=True)} | {fmt(d_best)} | {fmt(b_best)} | '
                     f'{fmt(d_best - b_best, sign=True)} |')
    lines.append('')
    if not differences:
        return lines + ['No seed has both the distilled and the baseline arm finished yet.']
    # the baseline against the student alone: the same seeds' saved students and batches
    alone = arm_pairs(rows, ('alone', BASELINE), seeds)
    gains = [number(b['last']) - number(a['last']) for _, a, b in alone]
    own = (['The baseline against the student alone (the same rule on its gain per seed): '
            + verdict_line(paired_summary(gains), 'gain')] if gains else [])
    return lines + [verdict_line(paired_summary(differences), 'difference')] + own + [
        '', BASELINE_RULE, pairing_note(pairs)]


def write_markdown(rows, work_dir, seeds=None):
    """Write ``compare.md`` of ``rows``, unless the file already says exactly that (a rerun that
    ran nothing and compares the same baseline leaves it untouched; another baseline's rows
    rewrite it)."""
    path = osp.join(work_dir, MD_NAME)
    lines = ['# kdzoo compare: did distillation help?', '',
             'Written by `kdzoo compare` from `compare.csv`; do not edit.', '']
    text = '\n'.join(lines + summary_lines(rows, seeds)) + '\n'
    if osp.isfile(path):
        with open(path) as f:
            if f.read() == text:
                return path
    with open(path, 'w') as f:
        f.write(text)
    return path


def write_chart(rows, work_dir, seeds=None):
    """Left: each seed's alone → distilled (last metric). Right: the mean gain with its 95 %
    interval. ``None`` when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed: no compare.png')
        return None
    pairs = seed_pairs(reported(rows)[0], seeds)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw=dict(width_ratios=[3, 2]))
    metric = pairs[0][1]['metric_name'] if pairs else 'metric'
    for seed, alone, distilled in pairs:
        values = [number(alone['last']), number(distilled['last'])]
        left.plot([0, 1], values, marker='o', label=f'seed {seed}')
        for x, row in enumerate((alone, distilled)):
            curve = parse_curve(row['curve'])
            if len(curve) > 1:
                left.scatter([x] * len(curve), [v for _, v in curve], s=8, alpha=0.3, color='gray')
    left.set_xticks([0, 1], list(ARMS))
    left.set_xlim(-0.3, 1.3)
    left.set_ylabel(f'{metric} (last evaluation; gray: earlier ones)')
    left.set_title('each seed: alone → distilled', fontsize=10)
    if pairs:
        left.legend(fontsize=8)
        summary = paired_summary([number(d['last']) - number(a['last']) for _, a, d in pairs])
        half = (summary.high - summary.mean) if summary.n > 1 else 0.0
        right.errorbar([0], [summary.mean], yerr=[[half], [half]], fmt='o', capsize=6)
        right.scatter([0] * summary.n, [number(d['last']) - number(a['last'])
                                        for _, a, d in pairs], color='gray', s=12)
        right.set_title(f'mean gain, 95 % interval: {summary.verdict}', fontsize=10)
    right.axhline(0, color='black', linewidth=0.8)
    right.set_xticks([])
    right.set_ylabel(f'gain in {metric} (distilled - alone)')
    fig.tight_layout()
    path = osp.join(work_dir, PNG_NAME)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
