"""Evaluate the student of a training checkpoint on the config's test set.

    kdzoo test CONFIG CKPT [--work-dir D] [--cfg-options k=v ...]
               [--ignore-class-names]

(``python tools/test.py`` in a checkout is the same command.)

CKPT is a checkpoint written by ``kdzoo train`` (a distillation run or a plain run) or a student
exported by ``kdzoo export`` (plain timm keys for classification, the plain model's keys for
mmseg / mmdet); only the student is evaluated (the teacher is not built).

What is tested is CKPT on the config's ``test_dataloader`` with its ``test_evaluator``, nothing
else: a ``load_from`` of the config is ignored with a line saying so (it would load other weights
over CKPT), one given in ``--cfg-options`` is an error, and so is a ``--cfg-options`` override of
``val_dataloader`` / ``val_evaluator`` (the test does not use them) without the same for
``test_*``. The class names CKPT records (``meta.dataset_meta``) must be the test set's, in the
same order (:func:`kdzoo.class_names.check_class_names`); ``--ignore-class-names`` skips that.
"""
import argparse
import sys

import kdzoo  # noqa: F401
from kdzoo.adapters import STUDENT_PREFIX, wrap
from kdzoo.checkpoint import apply_weights, load_file, state_dict_of, strip_prefix
from kdzoo.class_names import check_class_names, dataset_classes, recorded_classes
from kdzoo.experiments.arguments import config_name
from kdzoo.runner import load_config


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(prog='kdzoo test',
                                     description='Test the student of a kdzoo checkpoint.')
    parser.add_argument('config', type=config_name)
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--ignore-class-names', action='store_true',
                        help='test even when the class names CKPT records are not the test '
                        'set\'s (another set or order)')
    return parser.parse_args(argv)


def check_options(cfg_options, checkpoint):
    """``--cfg-options`` that would test something else than CKPT on the test set: ``load_from``
    / ``resume`` (other weights loaded over CKPT), and ``val_dataloader`` / ``val_evaluator``
    keys without the same ``test_*`` key (the test uses the test loader and evaluator)."""
    for key in ('load_from', 'resume'):
        if cfg_options.get(key):
            raise SystemExit(
                f'kdzoo test: --cfg-options {key}={cfg_options[key]} would load other weights '
                f'over CKPT ({checkpoint}); kdzoo test tests CKPT: give the checkpoint to test '
                'as CKPT and drop the option.')
    for key, value in cfg_options.items():
        head = key.split('.', 1)[0]
        if head in ('val_dataloader', 'val_evaluator') and 'test' + key[3:] not in cfg_options:
            raise SystemExit(
                f'kdzoo test: --cfg-options {key}={value} does not change the test: '
                'kdzoo test evaluates on test_dataloader with test_evaluator. Set '
                f'test{key[3:]}={value} instead.')


def ignore_config_loading(cfg, checkpoint):
    """Drop the config's own ``load_from`` / ``resume`` (MMEngine's test would load them over
    CKPT), with a line on stderr naming them."""
    for key in ('load_from', 'resume'):
        if cfg.get(key):
            print(f'kdzoo test: ignoring {key}={cfg[key]} of the config: kdzoo test tests CKPT '
                  f'({checkpoint})', file=sys.stderr)
    cfg.load_from, cfg.resume = None, False


def student_weights(weights, own_keys):
    """The student's weights keyed as the config's model: a distillation checkpoint's student
    (its ``distiller.student.`` prefix removed), or a classification export (plain timm keys,
    which the config's ``TimmClassifier`` holds under ``model.``)."""
    if any(k.startswith(STUDENT_PREFIX) for k in weights):
        return strip_prefix(weights, STUDENT_PREFIX)
    prefixes = {k.split('.', 1)[0] + '.' for k in own_keys}
    if len(prefixes) == 1 and not any(k in own_keys for k in weights):
        prefix = prefixes.pop()
        if not all(k.startswith(prefix) for k in weights):  # keys of another model stay as named
            return {prefix + k: v for k, v in weights.items()}
    return weights


def main(argv=None):
    from mmengine.runner import Runner
    args = parse_args(argv)
    check_options(args.cfg_options, args.checkpoint)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    ignore_config_loading(cfg, args.checkpoint)
    cfg.pop('distill_cfg', None)
    cfg = wrap(cfg)
    runner = Runner.from_cfg(cfg)
    loaded = load_file(args.checkpoint)
    apply_weights(runner.model, student_weights(state_dict_of(loaded), runner.model.state_dict()),
                  args.checkpoint, strict=True)
    if not args.ignore_class_names:
        check_class_names(recorded_classes(loaded), dataset_classes(
            runner.test_loop.dataloader.dataset), args.checkpoint, 'student',
            '--ignore-class-names')
    metrics = runner.test()
    print(metrics)
    return metrics
