"""Evaluate the student of a training checkpoint on the config's test set.

    python tools/test.py CONFIG CKPT [--work-dir D] [--cfg-options k=v ...]

CKPT is a checkpoint written by tools/train.py, from a distillation run or a plain run; only the
student is evaluated (the teacher is not built).
"""
import argparse

import kdzoo  # noqa: F401
from kdzoo.checkpoint import load_file, state_dict_of, strip_prefix
from kdzoo.runner import load_config


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Test the student of a kdzoo checkpoint.')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--work-dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def main(argv=None):
    from mmengine.runner import Runner

    from kdzoo.adapters import STUDENT_PREFIX, wrap
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.pop('distill_cfg', None)
    cfg = wrap(cfg)
    weights = state_dict_of(load_file(args.checkpoint))
    if any(k.startswith(STUDENT_PREFIX) for k in weights):
        weights = strip_prefix(weights, STUDENT_PREFIX)
    runner = Runner.from_cfg(cfg)
    runner.model.load_state_dict(weights, strict=True)
    return runner.test()


if __name__ == '__main__':
    print(main())
