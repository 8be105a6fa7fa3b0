"""``similarity.csv`` and ``similarity.png`` of ``kdzoo analyze``, and the printed table.

The CSV has one row per (student weights, teacher readout, student readout): the shapes of one
example, the CKA, and on the logits x logits row the top-1 agreement and
``KL(p_teacher ‖ p_student)``; under ``distill_cfg.teachers`` a teacher readout is written
``NAME:READOUT`` as items tap it. The PNG has one heatmap per student state (at initialisation,
trained) side by side, and under ``distill_cfg.teachers`` one row of them per teacher, each
titled with its teacher's name: teacher readouts as rows and student readouts as columns, the
value in every cell, and each panel's own order-preserving stage matching outlined, every readout
labelled with the shape of one example (channels x grid).
"""
import csv
import math

from kdzoo.analysis.readouts import kind_of
from kdzoo.analysis.suggest import monotone_match

COLUMNS = ['weights', 'teacher', 'student', 'teacher_shape', 'student_shape', 'cka',
           'top1_agreement', 'kl_teacher_student', 'images']


def shape_text(shape):
    return 'x'.join(str(s) for s in shape)


def teacher_text(sim):
    """``'teacher'``, or ``'teacher NAME'`` under ``distill_cfg.teachers``."""
    return 'teacher' if sim.teacher_name is None else f'teacher {sim.teacher_name}'


def readout_label(sim, readout):
    """A teacher readout as an item taps it: ``readout``, or ``'NAME:readout'`` under
    ``distill_cfg.teachers``."""
    return readout if sim.teacher_name is None else f'{sim.teacher_name}:{readout}'


def rows_of(sim):
    """The CSV rows of one :class:`kdzoo.analysis.measure.Similarity`."""
    rows = []
    for i, t in enumerate(sim.teacher):
        for j, s in enumerate(sim.student):
            logit_pair = t == s == 'logits' and sim.agreement is not None
            rows.append(dict(
                weights=sim.weights, teacher=readout_label(sim, t), student=s,
                teacher_shape=shape_text(sim.shapes['teacher'][t]),
                student_shape=shape_text(sim.shapes['student'][s]),
                cka=f'{float(sim.cka[i, j]):.6f}',
                top1_agreement=f'{sim.agreement:.6f}' if logit_pair else '',
                kl_teacher_student=f'{sim.kl:.6f}' if logit_pair else '',
                images=sim.images))
    return rows


def write_csv(path, sims):
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for sim in sims:
            writer.writerows(rows_of(sim))
    return path


def logit_text(sim):
    if sim.agreement is None:
        return 'no logit pair'
    return f'top-1 agreement {100 * sim.agreement:.1f} %, KL(t‖s) {sim.kl:.3g}'


def table(sim):
    """The CKA map as text lines (rows: teacher, columns: student)."""
    width = max(len(n) for n in sim.teacher + sim.student) + 2
    lines = [' ' * width + ''.join(n.rjust(width) for n in sim.student)]
    for i, t in enumerate(sim.teacher):
        lines.append(t.ljust(width) + ''.join(f'{float(v):.3f}'.rjust(width) for v in sim.cka[i]))
    return lines


def stage_matching(sim):
    """``[(teacher row, student column)]`` of the order-preserving matching of the stages."""
    rows = [i for i, n in enumerate(sim.teacher) if kind_of(n) == 'stage']
    cols = [j for j, n in enumerate(sim.student) if kind_of(n) == 'stage']
    if not rows or not cols:
        return []
    match = monotone_match([[sim.cka[i, j] for j in cols] for i in rows])
    return [(rows[r], j) for j, r in zip(cols, match)]


def write_heatmap(path, grid, titles, suptitle):
    """The similarities of ``grid`` (a list of rows, one per teacher, each a list of one
    similarity per student state) as heatmaps, values in the cells (matplotlib, Agg); ``titles``:
    one per student state, prefixed with ``'teacher NAME x '`` under ``distill_cfg.teachers``.
    Writes ``path``; returns the (closed) figure, whose axes hold the panels."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    rows = max(len(sim.teacher) for line in grid for sim in line)
    cols = max(len(sim.student) for line in grid for sim in line)
    fig, axes = plt.subplots(len(grid), len(grid[0]), squeeze=False,
                             figsize=(len(grid[0]) * (0.8 * cols + 2.2),
                                      len(grid) * (0.6 * rows + 2.2)))
    for line, panels in zip(grid, axes):
        for ax, sim, title in zip(panels, line, titles):
            image = ax.imshow(sim.cka.numpy(), vmin=0, vmax=1, cmap='viridis')
            for i in range(len(sim.teacher)):
                for j in range(len(sim.student)):
                    value = float(sim.cka[i, j])
                    ax.text(j, i, 'nan' if math.isnan(value) else f'{value:.2f}', ha='center',
                            va='center', fontsize=8, color='black' if value > 0.6 else 'white')
            for i, j in stage_matching(sim):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor='red',
                                       lw=2))
            ax.set_xticks(range(len(sim.student)),
                          [f'{n}\n{shape_text(sim.shapes["student"][n])}' for n in sim.student],
                          fontsize=8)
            ax.set_yticks(range(len(sim.teacher)),
                          [f'{n}\n{shape_text(sim.shapes["teacher"][n])}' for n in sim.teacher],
                          fontsize=8)
            ax.set_xlabel('student')
            prefix = '' if sim.teacher_name is None else f'{teacher_text(sim)} x '
            ax.set_title(f'{prefix}{title}\n{logit_text(sim)}', fontsize=9)
        panels[0].set_ylabel(teacher_text(line[0]))
    if len(grid) > 1:  # room for the x labels above the next teacher's titles
        fig.subplots_adjust(hspace=0.45)
    fig.colorbar(image, ax=list(axes.ravel()), shrink=0.8, label='linear CKA')
    fig.suptitle(f'{suptitle}\nred: the order-preserving stage matching of each panel',
                 fontsize=10)
    fig.savefig(path, dpi=120, bbox_inches='tight')
    plt.close(fig)
    return fig
