"""The quick-start: heterogeneous distillation on a generated image set, minutes on a CPU.

    python tools/quickstart.py [--fast] [--mldr] [--data-dir D] [--work-dir W]

1. generates a deterministic ImageFolder set of procedurally drawn shapes and textures
   (``kdzoo.toydata.make_shapes_dataset``; no download);
2. trains a teacher of one family (configs/quickstart/teacher.py);
3. trains the student, of another family, alone (configs/quickstart/student.py);
4. trains the same student with the same budget and seed, distilled with MSDCRD
   (configs/quickstart/msdcrd.py), and with ``--mldr`` also with MLDR-KD (mldrkd.py);
then prints a table of teacher / student-alone / distilled accuracy with wall times, and says
plainly whether distillation helped in this budget. ``--fast`` shrinks everything to seconds
(the test suite runs it).
"""
import argparse
import os.path as osp
import sys
import time
from types import SimpleNamespace

if __package__ in (None, ''):  # run as `python tools/quickstart.py`: make `tools` importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch

import kdzoo  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs', 'quickstart')
# The configs in configs/quickstart are written for these 10 classes.
FULL = dict(num_classes=10, per_class=(200, 50), teacher_iters=600, student_iters=500, batch=64)
FAST = dict(num_classes=10, per_class=(2, 1), teacher_iters=2, student_iters=2, batch=8)


def run(config, work_dir, options):
    """Train ``config`` with ``options`` (cfg-options dict); returns (val top-1, seconds, ckpt)."""
    from tools.train import build_runner
    args = SimpleNamespace(config=osp.join(CONFIGS, config), cfg_options=options,
                           work_dir=work_dir, launcher='none', amp=False, resume=None)
    start = time.time()
    runner = build_runner(args)
    runner.train()
    seconds = time.time() - start
    top1 = runner.message_hub.get_scalar('val/cls/top1').current()
    ckpt = osp.join(work_dir, f'iter_{runner.iter}.pth')
    return top1, seconds, ckpt


def common_options(data_dir, iters, batch):
    return {
        'train_dataloader.dataset.root': osp.join(data_dir, 'train'),
        'val_dataloader.dataset.root': osp.join(data_dir, 'val'),
        'test_dataloader.dataset.root': osp.join(data_dir, 'val'),
        'train_dataloader.batch_size': batch,
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
        'param_scheduler.0.total_steps': iters,
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': max(1, iters // 6),
    }


def model_name(config):
    """The timm name of the config's model, with the arguments that change its architecture."""
    from mmengine.config import Config
    model = Config.fromfile(osp.join(CONFIGS, config)).model
    common = ('type', 'model_name', 'num_classes', 'img_size', 'mean', 'std', 'checkpoint')
    extra = ', '.join(f'{k}={v}' for k, v in model.items() if k not in common)
    return f'{model.model_name} ({extra})' if extra else model.model_name


def verdict(gain, noise=2.0):
    """What a gain of ``gain`` points over the student alone says from one seed: under ``noise``
    points either way, one run cannot tell it from run-to-run noise."""
    if gain >= noise:
        return f'helped: {gain:+.1f} points over the student trained alone'
    if gain > -noise:
        return (f'no clear effect in this budget: {gain:+.1f} points vs the student alone, less '
                f'than {noise:.0f} points, which one seed cannot tell from noise')
    return f'did not help in this budget: {gain:+.1f} points vs the student alone'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--fast', action='store_true', help='tiny sizes: seconds (for tests)')
    parser.add_argument('--mldr', action='store_true', help='also distil with MLDR-KD')
    parser.add_argument('--data-dir', default=osp.join(REPO, 'data', 'quickstart'))
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'quickstart'))
    args = parser.parse_args(argv)
    size = FAST if args.fast else FULL
    from kdzoo.toydata import make_shapes_dataset

    start = time.time()
    make_shapes_dataset(args.data_dir, num_classes=size['num_classes'], per_class=size['per_class'])
    print(f'data: {size["num_classes"]} classes, {size["per_class"][0]} train / '
          f'{size["per_class"][1]} val images per class, 32x32, in {args.data_dir} '
          f'({time.time() - start:.0f} s)', flush=True)

    student_opts = common_options(args.data_dir, size['student_iters'], size['batch'])
    teacher_opts = common_options(args.data_dir, size['teacher_iters'], size['batch'])
    rows = []
    t_top1, t_sec, t_ckpt = run('teacher.py', osp.join(args.work_dir, 'teacher'), teacher_opts)
    rows.append(('teacher', model_name('teacher.py'), size['teacher_iters'], t_top1, t_sec))
    student = model_name('student.py')
    s_top1, s_sec, _ = run('student.py', osp.join(args.work_dir, 'student'), student_opts)
    rows.append(('student alone', student, size['student_iters'], s_top1, s_sec))
    methods = [('msdcrd', 'MSDCRD')] + ([('mldrkd', 'MLDR-KD')] if args.mldr else [])
    distilled = []
    for config, label in methods:
        opts = dict(student_opts, **{'distill_cfg.teacher.checkpoint': t_ckpt})
        top1, sec, _ = run(f'{config}.py', osp.join(args.work_dir, config), opts)
        rows.append((f'student + {label}', student, size['student_iters'], top1, sec))
        distilled.append((label, top1))

    print(f'\nkdzoo quick-start ({torch.get_num_threads()} CPU threads, total '
          f'{time.time() - start:.0f} s)')
    print('| run | model | iterations | val top-1 (%) | wall time (s) |')
    print('|---|---|---:|---:|---:|')
    for name, model, iters, top1, sec in rows:
        print(f'| {name} | {model} | {iters} | {top1:.1f} | {sec:.0f} |')
    for label, top1 in distilled:
        print(f'{label}: {verdict(top1 - s_top1)} (one seed; same iterations and data order).')
    if t_top1 <= s_top1:
        print('note: the teacher is not better than the student alone in this budget, so there is '
              'little to distil.')
    return rows


if __name__ == '__main__':
    main()
