"""Train a model from an MMEngine config; with ``distill_cfg`` in the config, distil it.

    kdzoo train CONFIG [--work-dir D] [--cfg-options k=v ...] [--resume [CKPT]]
                [--amp] [--dry-run] [--launcher none|pytorch|slurm]

(``python tools/train.py`` in a checkout is the same command.)

One entry point for classification (timm), mmseg and mmdet configs. Adding ``distill_cfg`` to a
config is the only change a user makes: kdzoo.adapters.wrap turns its model into the task's
distilling model (docs/distill_cfg.md).
"""
import argparse

from kdzoo.experiments.arguments import add_launcher, config_name, parsed_launcher
from kdzoo.runner import build_runner, dry_run, process_group_teardown


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(prog='kdzoo train',
                                     description='Train (and distil) a model with MMEngine.')
    parser.add_argument('config', type=config_name, help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: the config\'s work_dir, else ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. train_cfg.max_iters=100')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from CKPT, or alone: from the work dir\'s last checkpoint')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--dry-run', action='store_true',
                        help='build everything, run one batch, print each distill item, exit')
    add_launcher(parser, 'pytorch: started by torchrun (torchrun -m kdzoo train ..., or a '
                 'checkout\'s tools/dist_train.sh); slurm: by srun (a checkout\'s '
                 'tools/slurm_train.sh)')
    return parsed_launcher(parser.parse_args(argv))


def main(argv=None):
    args = parse_args(argv)
    with process_group_teardown():  # multi-process: every rank exits cleanly (exit code 0)
        runner = build_runner(args.config, cfg_options=args.cfg_options, work_dir=args.work_dir,
                              launcher=args.launcher, amp=args.amp, resume=args.resume)
        if args.dry_run:
            dry_run(runner)
        else:
            runner.train()
    return runner
