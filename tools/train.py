"""Train a model from an MMEngine config; with ``distill_cfg`` in the config, distil it.

    python tools/train.py CONFIG [--work-dir D] [--cfg-options k=v ...] [--resume [CKPT]]
                          [--amp] [--dry-run] [--launcher none|pytorch]

One entry point for classification (timm), mmseg and mmdet configs. Adding ``distill_cfg`` to a
config is the only change a user makes: kdzoo.adapters.wrap turns its model into the task's
distilling model (docs/distill_cfg.md).
"""
import argparse
import os
import os.path as osp

import kdzoo  # noqa: F401  (fork config scopes, before any config is parsed)
from kdzoo.checkpoint import harden_mmengine_loading


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Train (and distil) a model with MMEngine.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: the config\'s work_dir, else ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. train_cfg.max_iters=100')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from CKPT, or alone: from the work dir\'s last checkpoint')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--dry-run', action='store_true',
                        help='build everything, run one batch, print each distill item, exit')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(path, cfg_options=None, work_dir=None):
    """Read ``path``, apply ``cfg_options`` and set ``work_dir``; the distill wrapping comes later."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def build_runner(args):
    """The MMEngine Runner for ``args`` (config wrapped for distillation, resume and AMP set)."""
    from mmengine.runner import Runner

    from kdzoo.adapters import wrap
    harden_mmengine_loading()
    cfg = wrap(load_config(args.config, args.cfg_options, args.work_dir))
    cfg.launcher = args.launcher
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA GPU (MMEngine\'s AmpOptimWrapper); none is '
                             'visible here. Train without --amp on the CPU.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return Runner.from_cfg(cfg)


def dry_run(runner):
    """One batch through the model: print every distill item and the loss values, no update."""
    import torch
    from mmengine.model import is_model_wrapper
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if hasattr(model, 'init_weights'):
        model.init_weights()  # as runner.train() does: pretrained backbones, head bias priors
    data = next(iter(runner.train_dataloader))
    data = model.data_preprocessor(data, True)
    model.train()
    print(f'dry run: {type(model).__name__}, work_dir {runner.work_dir}')
    if hasattr(model, 'describe_step'):
        for line in model.describe_step(**data):
            print('  ' + line)
    with torch.no_grad():
        losses = model(**data, mode='loss')
    for key, value in losses.items():
        value = sum(value) if isinstance(value, (list, tuple)) else value
        print(f'  {key} = {float(value):.6g}')
    return losses


def main(argv=None):
    args = parse_args(argv)
    runner = build_runner(args)
    if args.dry_run:
        dry_run(runner)
        return runner
    runner.train()
    return runner


if __name__ == '__main__':
    main()
