"""Suggested distill items from a CKA map: order-preserving stage matching and the snippet.

:func:`monotone_match` matches every student stage ``j`` with a teacher stage ``f(j)``, ``f``
non-decreasing (a later student stage never learns from an earlier teacher stage than the stage
before it), maximising ``Σ_j CKA[f(j), j]``. A dynamic programme over the columns::

    best_1(r) = CKA[r, 1]
    best_j(r) = CKA[r, j] + max_{r' <= r} best_{j-1}(r')      f(C) = argmax_r best_C(r)

then back-tracking, ``O(R · C)``. Two student stages may share a teacher stage when the student
is deeper than the teacher.

:func:`suggest` turns the matching into distill items with a default loss per pair (LFCC on a
stage pair, with a ``Projector`` connector from the student's width to the teacher's when they
differ; KD on classification logits, MSDCRD on segmentation logit maps; PKD on the FPN levels of
a detector, paired level by level), and :func:`snippet` into the text to paste at the end of a
copy of the config (``kdzoo train --dry-run`` builds it). Under ``distill_cfg.teachers`` each
teacher's map gives its own items: teacher taps written ``'NAME:TAP'``, item and connector names
ending in ``_NAME``.
"""
import ast
import math

from kdzoo import tasks
from kdzoo.analysis.readouts import kind_of

STAGE_LOSS, LEVEL_LOSS = 'LFCCLoss', 'PKDLoss'


def monotone_match(score):
    """For a ``(R, C)`` score (rows: teacher stages, columns: student stages) the rows
    ``[f(0), .., f(C-1)]``, non-decreasing, with the highest ``Σ_j score[f(j)][j]`` (module doc);
    ``nan`` counts as -1, below any CKA."""
    score = [[-1.0 if math.isnan(float(v)) else float(v) for v in row] for row in score]
    rows, cols = len(score), len(score[0])
    best = [score[r][0] for r in range(rows)]
    back = []
    for j in range(1, cols):
        prefix, arg = [], []
        for r in range(rows):
            if r == 0 or best[r] > prefix[-1]:
                prefix.append(best[r])
                arg.append(r)
            else:
                prefix.append(prefix[-1])
                arg.append(arg[-1])
        back.append(arg)
        best = [prefix[r] + score[r][j] for r in range(rows)]
    match = [max(range(rows), key=lambda r: (best[r], -r))]
    for arg in reversed(back):
        match.append(arg[match[-1]])
    return match[::-1]


def width(shape):
    """Channels of a readout from the shape of one example (``(C, H, W)`` or ``(K,)``)."""
    return shape[0]


def item(student, teacher, loss, name, connector=None):
    out = dict(student=student, teacher=teacher, loss=dict(type=loss))
    if connector:
        out['connector'] = connector
    out['name'] = name
    return out


def projector(name, student_shape, teacher_shape, connectors):
    """The connector name for ``name`` when the widths differ (added to ``connectors``)."""
    if width(student_shape) == width(teacher_shape):
        return None
    key = f'proj_{name}'
    connectors[key] = dict(type='Projector', in_channels=width(student_shape),
                           out_channels=width(teacher_shape))
    return key


def suggest(sim, task, student_taps, teacher_taps):
    """``(items, connectors, notes)`` from a :class:`kdzoo.analysis.measure.Similarity`:
    ``items`` as ``[(item dict, CKA)]``, ``connectors`` a dict, ``notes`` lines for what is not
    suggested and why. ``task``: the task's name (its descriptor's ``logit_loss`` is the logit
    pair's loss). ``*_taps``: ``{readout name: tap or None}`` (:func:`kdzoo.analysis.readouts.
    taps`). With ``sim.teacher_name`` (a teacher of ``distill_cfg.teachers``) the items tap
    ``'NAME:TAP'`` and the item and connector names end in ``_NAME`` (module doc)."""
    shapes_s, shapes_t = sim.shapes['student'], sim.shapes['teacher']
    items, connectors, notes = [], {}, []
    name = sim.teacher_name
    teacher, suffix = ('teacher', '') if name is None else (f'teacher {name}', f'_{name}')

    def on_teacher(tap):
        return tap if name is None else f'{name}:{tap}'

    rows = [i for i, n in enumerate(sim.teacher) if kind_of(n) == 'stage' and teacher_taps[n]]
    cols = [j for j, n in enumerate(sim.student) if kind_of(n) == 'stage' and student_taps[n]]
    for side, names, taps in ((teacher, sim.teacher, teacher_taps),
                              ('student', sim.student, student_taps)):
        untapped = [n for n in names if kind_of(n) == 'stage' and not taps[n]]
        if untapped:
            notes.append(f'{side} {", ".join(untapped)}: no module returns these tensors, so no '
                         'tap reads them; left out of the matching')
    if rows and cols:
        score = [[sim.cka[i, j] for j in cols] for i in rows]
        for j, r in zip(cols, monotone_match(score)):
            s, t = sim.student[j], sim.teacher[rows[r]]
            items.append((item(student_taps[s], on_teacher(teacher_taps[t]), STAGE_LOSS,
                               f'lfcc_{s}{suffix}',
                               projector(s + suffix, shapes_s[s], shapes_t[t], connectors)),
                          float(sim.cka[rows[r], j])))
    if 'logits' in sim.student and 'logits' in sim.teacher:
        k_s, k_t = width(shapes_s['logits']), width(shapes_t['logits'])
        if k_s == k_t:
            loss = tasks.get(task).logit_loss
            cka = float(sim.cka[sim.teacher.index('logits'), sim.student.index('logits')])
            items.append((item('logits', on_teacher('logits'), loss,
                               loss[:-len('Loss')].lower() + '_logits' + suffix), cka))
        else:
            notes.append(f'logits: the student predicts {k_s} classes, the {teacher} {k_t}; logit '
                         'losses compare the same classes, so the logits are not paired')
    levels_s = [n for n in sim.student if kind_of(n) == 'fpn']
    levels_t = [n for n in sim.teacher if kind_of(n) == 'fpn']
    if levels_s and len(levels_s) == len(levels_t):
        cka = sum(float(sim.cka[sim.teacher.index(t), sim.student.index(s)])
                  for s, t in zip(levels_s, levels_t)) / len(levels_s)
        connector = projector('fpn' + suffix, shapes_s[levels_s[0]], shapes_t[levels_t[0]],
                              connectors)
        items.append((item('neck', on_teacher('neck'), LEVEL_LOSS, f'pkd_fpn{suffix}', connector),
                      cka))
    elif levels_s or levels_t:
        notes.append(f'FPN: the student has {len(levels_s)} levels, the {teacher} {len(levels_t)}; '
                     'levels are paired one to one, so the neck is not paired')
    return items, connectors, notes


def source(value):
    """``value`` (dicts, lists, strings, numbers) as config source: ``dict(k=v)`` for dicts."""
    if isinstance(value, dict):
        return 'dict(' + ', '.join(f'{k}={source(v)}' for k, v in value.items()) + ')'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(source(v) for v in value) + ']'
    return repr(value)


def assigns(path, name):
    """Whether the config file at ``path`` assigns ``name`` at its top level (a dict that is
    defined there is updated in place; one inherited from ``_base_`` is merged into)."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    return any(isinstance(node, ast.Assign)
               and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
               for node in tree.body)


def snippet(items, connectors, notes, local, inherited_connectors, header):
    """The text to paste at the end of a copy of the config (next to it, so that its relative
    paths still resolve).

    ``local``: the config assigns ``distill_cfg`` itself, which the snippet then updates
    (``distill_cfg.update(losses=..., connectors=...)``: both keys replaced); otherwise the
    snippet assigns ``distill_cfg = dict(losses=..., connectors=...)``, which MMEngine merges into
    the inherited one (the list replaced; ``_delete_=True`` replaces inherited connectors when
    ``inherited_connectors``). ``header``: comment lines above it.
    """
    lines = [f'# {line}' for line in header]
    lines += [f'# not suggested: {note}' for note in notes]
    lines.append('distill_cfg.update(' if local else 'distill_cfg = dict(')
    lines.append('    losses=[')
    for entry, cka in items:
        lines.append(f'        {source(entry)},  # CKA {cka:.2f}')
    lines.append('    ],')
    entries = ([] if local or not inherited_connectors else ['_delete_=True']) + [
        f'{name}={source(cfg)}' for name, cfg in connectors.items()]
    if entries:
        lines += ['    connectors=dict('] + [f'        {entry},' for entry in entries] + ['    ),']
    elif local:
        lines.append('    connectors=dict(),')
    lines.append(')')
    return '\n'.join(lines)
