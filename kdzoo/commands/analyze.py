"""What does the student share with the teacher? Stage-by-stage similarity and suggested items.

    kdzoo analyze CONFIG [--checkpoint CKPT] [--batches N] [--batch-size B]
                  [--out DIR] [--cfg-options k=v ...] [--ignore-class-names]

(``python tools/analyze.py`` in a checkout is the same command.)

For a config with ``distill_cfg`` (classification, mmseg, mmdet), on N validation batches of B
images (drawn in a fixed shuffled order, whatever the config's val batch size; B >= 4, the unbiased
HSIC needs 4):

- the linear CKA of every teacher stage readout with every student stage readout (stage1..stage4
  and the logits; for mmdet the backbone stages and the FPN levels), minibatch CKA with the
  unbiased HSIC (Nguyen, Raghu, Kornblith 2021), the two readouts first brought to a common grid
  by kdzoo/layout.py;
- the teacher/student top-1 agreement and KL(teacher ‖ student) on the logits (per pixel for seg).

The teacher is the config's (``distill_cfg.teacher``, its checkpoint); under
``distill_cfg.teachers`` each teacher is mapped against the student in turn (one row of heatmap
panels per teacher, titled with its name; one table per teacher; teacher readouts written
``NAME:READOUT`` in the CSV), each map the one a config with that teacher alone gives, and the
snippet holds one set of items per teacher, tapping ``'NAME:TAP'``. The student is at its
initialisation (the config's seed, as training starts it); with ``--checkpoint`` (a distilling or
a plain run of the student) also trained, and the PNG shows both side by side. That checkpoint
is checked before anything is measured: the config's student (keys, shapes), finite values, and
the class names it records equal to the validation data's (``--ignore-class-names`` skips the
last check).

Writes ``similarity.png`` and ``similarity.csv`` in ``--out`` (default
``work_dirs/analyze/<config name>``) and prints the CKA tables and a ``distill_cfg`` snippet: each
student stage matched with a teacher stage, order-preserving, with the highest total CKA (of the
trained student when given), a default loss per pair and the connectors that widths need; paste
it at the end of a copy of the config (docs/analyze.md; it keeps the config's teachers).
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

from kdzoo import tasks
from kdzoo.analysis.cka import MIN_EXAMPLES
from kdzoo.analysis.measure import measure, one_image, student_checkpoint
from kdzoo.analysis.readouts import taps
from kdzoo.analysis.report import logit_text, table, teacher_text, write_csv, write_heatmap
from kdzoo.analysis.suggest import assigns, snippet, suggest
from kdzoo.class_names import check_class_names, dataset_classes, recorded_classes
from kdzoo.experiments.arguments import config_name
from kdzoo.experiments.runs import make_runner
from kdzoo.patches import unformatted_config_dumps
from kdzoo.runner import load_config
from kdzoo.teacher import teacher_configs
from kdzoo.teacher_names import SINGLE
from kdzoo.wrappers import unwrap


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(prog='kdzoo analyze', description=__doc__.split('\n\n')[0])
    parser.add_argument('config', type=config_name, help='a config with distill_cfg')
    parser.add_argument('--checkpoint', help='a trained student: a checkpoint of a run of CONFIG, '
                        'or of its student alone')
    parser.add_argument('--batches', type=int, default=8,
                        help='validation batches to estimate on (default 8)')
    parser.add_argument('--batch-size', type=int, default=8,
                        help=f'images per batch (default 8, at least {MIN_EXAMPLES})')
    parser.add_argument('--out', help='output folder (default work_dirs/analyze/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. val_dataloader.dataset.root=...')
    parser.add_argument('--ignore-class-names', action='store_true',
                        help='analyse even when the class names --checkpoint records are not the '
                        'validation data\'s (another set or order)')
    args = parser.parse_args(argv)
    if args.batch_size < MIN_EXAMPLES:
        parser.error(f'--batch-size {args.batch_size}: the unbiased HSIC estimator needs at least '
                     f'{MIN_EXAMPLES} images per batch')
    if args.batches < 1:
        parser.error('--batches must be at least 1')
    return args


def check_config(cfg, config):
    """A distilling config whose data and teacher checkpoint exist (else: what is missing and
    the command that makes it, kdzoo.experiments.paired.check_inputs)."""
    from kdzoo.experiments.paired import check_inputs
    if 'distill_cfg' not in cfg:
        raise SystemExit(f'analyze: {config} has no distill_cfg; analyze compares a student with '
                         'the teacher of its distill_cfg (docs/distill_cfg.md)')
    check_inputs(cfg, config, tool='analyze')


def check_load_from(cfg, cfg_options):
    """analyze never loads ``load_from`` (the trained student is ``--checkpoint``): one given in
    ``--cfg-options`` is an error, the config's own is ignored with a line saying so."""
    if cfg_options.get('load_from'):
        raise SystemExit(f'analyze: --cfg-options load_from={cfg_options["load_from"]} is not '
                         'loaded by analyze; give the trained student as --checkpoint '
                         f'{cfg_options["load_from"]}.')
    if cfg.get('load_from'):
        print(f'analyze: ignoring load_from={cfg.load_from} of the config: the student is at its '
              'initialisation, and the trained one is --checkpoint', file=sys.stderr)


def analysis_loader(cfg, batch_size):
    """The config's validation set re-batched: ``batch_size`` images drawn in one fixed shuffled
    order (seed 0: every run and both student states see the same images, and a batch is a random
    sample of the set, not of one class of a class-sorted folder), the last incomplete batch
    dropped, no worker processes."""
    return dict(cfg.val_dataloader, batch_size=batch_size, num_workers=0,
                persistent_workers=False, drop_last=True,
                sampler=dict(type='DefaultSampler', shuffle=True, seed=0))


def build(config, cfg_options, work_dir):
    """``(distilling model with the student initialised as training does, runner)``: the
    runner of kdzoo train (kdzoo.runner.build_runner), quiet."""
    with unformatted_config_dumps():
        runner = make_runner(config, work_dir, dict(cfg_options, log_level='WARNING'))
    model = unwrap(runner.model)
    model.init_weights()
    return model, runner


def checkpoints_text(cfg, multi):
    """The teachers' checkpoints for the printed header: ``'teacher checkpoint PATH'``, or
    ``'teacher checkpoints: NAME PATH, ...'`` under ``distill_cfg.teachers``."""
    paths = {name: teacher.get('checkpoint')
             for name, teacher in teacher_configs(cfg.distill_cfg).items()}
    if not multi:
        return f'teacher checkpoint {paths[SINGLE]}'
    return 'teacher checkpoints: ' + ', '.join(f'{name} {path}' for name, path in paths.items())


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    cfg = load_config(args.config, args.cfg_options)
    check_config(cfg, args.config)
    check_load_from(cfg, args.cfg_options)
    task = tasks.of_config(cfg).name
    out = args.out or osp.join('work_dirs', 'analyze', osp.splitext(osp.basename(args.config))[0])
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work_dir:  # the runner's log: nothing to keep
        model, runner = build(args.config, args.cfg_options, work_dir)
        loader = runner.build_dataloader(analysis_loader(cfg, args.batch_size))
        if args.checkpoint:
            trained, loaded = student_checkpoint(model, args.checkpoint)
            if not args.ignore_class_names:
                check_class_names(recorded_classes(loaded), dataset_classes(loader.dataset),
                                  args.checkpoint, 'student', '--ignore-class-names')
        times = {'build': time.perf_counter() - start}
        states = [measure(model, task, loader, args.batches, 'init')]  # [state][teacher]
        times['init'] = time.perf_counter() - start - sum(times.values())
        if args.checkpoint:
            model.student.load_state_dict(trained)
            states.append(measure(model, task, loader, args.batches, 'trained'))
            times['trained'] = time.perf_counter() - start - sum(times.values())
        inputs = model.data_preprocessor(one_image(next(iter(loader)), 0), False)['inputs']
        student_taps = taps(task, model.student, inputs, states[0][0].student)
        with model.running_teacher(inputs):
            teacher_taps = [taps(task, teacher, model.teacher_inputs(inputs, name), sim.teacher)
                            for (name, teacher), sim in zip(model.teachers.items(), states[0])]
    multi = model.multi_teacher
    titles = ['student at initialisation'] + (
        [f'student trained ({osp.basename(args.checkpoint)})'] if args.checkpoint else [])
    sims = [sim for state in states for sim in state]
    sim = sims[0]
    batches = f'{sim.batches} batch{"es" if sim.batches > 1 else ""} of {args.batch_size}'
    suptitle = (f'linear CKA, {"each " if multi else ""}teacher x student: {args.config} ({task}, '
                f'{sim.images} val images in {batches})')
    png = osp.join(out, 'similarity.png')
    write_heatmap(png, [list(per_teacher) for per_teacher in zip(*states)], titles, suptitle)
    csv_path = write_csv(osp.join(out, 'similarity.csv'), sims)
    print(f'analyze: {args.config} ({task}), {sim.images} validation images in {batches}; '
          f'{checkpoints_text(cfg, multi)}')
    for state, title in zip(states, titles):
        for sim in state:
            print(f'\nlinear CKA, rows: {teacher_text(sim)}, columns: {title}; logits: '
                  f'{logit_text(sim)}')
            print('\n'.join('  ' + line for line in table(sim)))
    items, connectors, notes = [], {}, []
    for sim, names in zip(states[-1], teacher_taps):
        more = suggest(sim, task, student_taps, names)
        items += more[0]
        connectors.update(more[1])
        notes += [note for note in more[2] if note not in notes]  # the student's: once
    header = ([f'kdzoo analyze {args.config}: each student stage matched with a stage of',
               f'each teacher, order kept, highest total CKA ({titles[-1]}); one set of',
               'items per teacher. Paste at the end of a copy of the config, in the same folder.']
              if multi else
              [f'kdzoo analyze {args.config}: each student stage matched with a teacher stage,',
               f'order kept, highest total CKA ({titles[-1]}). Paste at the end of a',
               'copy of the config, in the same folder.'])
    print('\n' + snippet(items, connectors, notes, assigns(args.config, 'distill_cfg'),
                         bool(cfg.distill_cfg.get('connectors')), header))
    elapsed = time.perf_counter() - start
    print(f'\nwrote {png} and {csv_path} in {elapsed:.1f} s (' + ', '.join(
        f'{name} {seconds:.1f} s' for name, seconds in times.items()) + ')')
    return sims, items, connectors
