"""Building MMEngine runners from kdzoo configs: the one path of tools/train.py, the quick start,
the comparisons and the plug-and-play matrix.

:func:`build_runner` reads a config, applies cfg-options, wraps it for distillation when it has
``distill_cfg`` (:func:`kdzoo.adapters.wrap`), seeds its training data stream
(:mod:`kdzoo.data_stream`) and returns ``mmengine.runner.Runner.from_cfg(cfg)``.
"""
import os.path as osp

import kdzoo  # noqa: F401  (fork config scopes, before any config is parsed)
from kdzoo.checkpoint import harden_mmengine_loading
from kdzoo.data_stream import seed_train_stream


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


def run_seed(cfg):
    """The run's seed, ``randomness.seed``; a config without one gets a random seed written into it
    (MMEngine would draw one too), so the data stream can be seeded from it and replayed."""
    import random
    randomness = cfg.get('randomness') or {}
    if randomness.get('seed') is None:
        cfg.randomness = dict(randomness, seed=random.SystemRandom().randrange(2 ** 31))
    return cfg.randomness.seed


def build_runner(args):
    """The MMEngine Runner for ``args`` (``config``, ``cfg_options``, ``work_dir``, ``launcher``,
    ``amp``, ``resume``: tools/train.py's arguments; ``student_only=True`` drops ``distill_cfg``):
    config wrapped for distillation, training stream seeded, resume and AMP set."""
    from mmengine.runner import Runner

    from kdzoo.adapters import wrap
    harden_mmengine_loading()
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    if getattr(args, 'student_only', False):  # the same config's student, trained alone
        cfg.pop('distill_cfg', None)
    cfg = wrap(cfg)
    seed_train_stream(cfg, run_seed(cfg))
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
