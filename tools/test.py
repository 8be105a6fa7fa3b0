"""Evaluate the student of a training checkpoint on the config's test set.

    python tools/test.py CONFIG CKPT [--work-dir D] [--cfg-options k=v ...]

CKPT is a checkpoint written by tools/train.py (a distillation run or a plain run) or a student
exported by tools/export_student.py (plain timm keys for classification, the plain model's keys
for mmseg / mmdet); only the student is evaluated (the teacher is not built).
"""
import argparse

import kdzoo  # noqa: F401
from kdzoo.adapters import STUDENT_PREFIX, wrap
from kdzoo.checkpoint import apply_weights, load_file, state_dict_of, strip_prefix
from kdzoo.runner import load_config


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Test the student of a kdzoo checkpoint.')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def student_weights(weights, own_keys):
    """The student's weights keyed as the config's model: a distillation checkpoint's student
    (its ``distiller.student.`` prefix removed), or a classification export (plain timm keys,
    which the config's ``TimmClassifier`` holds under ``model.``)."""
    if any(k.startswith(STUDENT_PREFIX) for k in weights):
        return strip_prefix(weights, STUDENT_PREFIX)
    prefixes = {k.split('.', 1)[0] + '.' for k in own_keys}
    if len(prefixes) == 1 and not any(k in own_keys for k in weights):
        prefix = prefixes.pop()
        return {prefix + k: v for k, v in weights.items()}
    return weights


def main(argv=None):
    from mmengine.runner import Runner
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.pop('distill_cfg', None)
    cfg = wrap(cfg)
    runner = Runner.from_cfg(cfg)
    weights = state_dict_of(load_file(args.checkpoint))
    apply_weights(runner.model, student_weights(weights, runner.model.state_dict()),
                  args.checkpoint, strict=True)
    return runner.test()


if __name__ == '__main__':
    print(main())
