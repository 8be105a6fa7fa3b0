"""Building MMEngine runners from kdzoo configs: the one path of ``kdzoo train``, the quick start,
the comparisons and the plug-and-play matrix.

:func:`build_runner` reads a config, applies cfg-options, wraps it for distillation when it has
``distill_cfg`` (:func:`kdzoo.adapters.wrap`), seeds its training data stream
(:mod:`kdzoo.data_stream`), adds :class:`kdzoo.hooks.RandomStateHook` (exact resume) and
:class:`kdzoo.hooks.SplitClassesHook` (train and val name the same classes), sets up
multi-process training for the machine (:func:`distributed_setup`) and returns
``mmengine.runner.Runner.from_cfg(cfg)``. :func:`process_group_teardown` ends a multi-process
run in order.
"""
import os.path as osp
from contextlib import contextmanager
from datetime import timedelta

import kdzoo  # noqa: F401  (fork config scopes, before any config is parsed)
from kdzoo.adapters import check_explicit_overrides, is_distill_model_cfg, wrap
from kdzoo.data_stream import STREAM_KEYS, seed_train_stream
from kdzoo.hooks.split_classes import check_training_classes
from kdzoo.monitor import ratio_warnings
from kdzoo.patches import harden_mmengine_loading, scoped_collate_fn
from kdzoo.schedule import check_warmup, is_iteration_based, with_rescaled_schedule
from kdzoo.teacher_cache import configured_caches
from kdzoo.wrappers import unwrap


def load_config(path, cfg_options=None, work_dir=None, resume=False):
    """Read ``path``, apply ``cfg_options`` and set ``work_dir``; the distill wrapping comes
    later. Options that change an iteration-based config's ``train_cfg.max_iters`` rescale its
    schedule (not when ``resume``: the checkpoint's is restored) and validation interval too,
    with a line saying so (:func:`kdzoo.schedule.with_rescaled_schedule`)."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(with_rescaled_schedule(cfg, cfg_options, resume))
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


def build_runner(config, *, cfg_options=None, work_dir=None, launcher='none', amp=False,
                 resume=None, student_only=False):
    """The MMEngine Runner of the config file ``config``: ``kdzoo train``'s arguments by name.

    ``cfg_options`` (a dict of dotted keys) are applied to the config, ``work_dir`` replaces its
    own; ``launcher`` is ``'none'``, ``'pytorch'`` or ``'slurm'`` (multi-process,
    :func:`distributed_setup`);
    ``amp`` trains with mixed precision (CUDA only); ``resume`` is ``'auto'`` (the work dir's last
    checkpoint) or a checkpoint path; ``student_only=True`` drops ``distill_cfg`` (the same
    config's student, trained alone). The config is wrapped for distillation and its training
    stream seeded."""
    from mmengine.runner import Runner
    harden_mmengine_loading()
    scoped_collate_fn()
    cfg = load_config(config, cfg_options, work_dir, resume=bool(resume))
    check_explicit_overrides(cfg, cfg_options)
    if student_only:
        cfg.pop('distill_cfg', None)
        if is_distill_model_cfg(cfg):  # the explicit form: its student alone
            cfg.model = cfg.model.student
    cfg = wrap(cfg)
    cached = any(spec is not None for *_, spec in configured_caches(cfg))
    seed_train_stream(cfg, run_seed(cfg), keys=cached)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='RandomStateHook'), dict(type='SplitClassesHook')]
    if cached:
        cfg.custom_hooks.append(dict(type='TeacherCacheHook'))
    cfg.custom_hooks.append(dict(type='LoadCheckHook'))  # load_from / --resume fit the model
    cfg.launcher = launcher
    if launcher != 'none':
        distributed_setup(cfg)
    if amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA GPU (MMEngine\'s AmpOptimWrapper); none is '
                             'visible here. Train without --amp on the CPU.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if resume:
        cfg.resume = True
        cfg.load_from = last_checkpoint(cfg.work_dir) if resume == 'auto' else resume
    runner = Runner.from_cfg(cfg)
    check_run_length(runner)
    return runner


def check_run_length(runner):
    """Every distill item's warm-up ends within the run (:func:`kdzoo.schedule.check_warmup`),
    before anything trains. An epoch-based run's length is known once its training loop is built
    (its data loader's length), which ``runner.train()`` does first anyway; it is built here only
    when an item has a warm-up."""
    model = unwrap(runner.model)
    items = model.distiller.items if hasattr(model, 'distiller') else []
    if not any(item.warmup_iters for item in items):
        return
    cfg = runner.cfg
    check_warmup(items, cfg.train_cfg.max_iters if is_iteration_based(cfg) else runner.max_iters)


def last_checkpoint(work_dir):
    """The checkpoint ``--resume`` alone resumes from: the one the work dir's ``last_checkpoint``
    file names (MMEngine's CheckpointHook writes it). None there is an error naming the work dir,
    not a silent start from scratch."""
    from mmengine.runner import find_latest_checkpoint
    path = find_latest_checkpoint(work_dir) if osp.isdir(work_dir) else None
    if path is None:
        raise FileNotFoundError(
            f'--resume: no checkpoint to resume from in the work dir {work_dir} (no '
            'last_checkpoint file there). Give the run\'s work dir (--work-dir) or the checkpoint '
            '(--resume PATH), or train from scratch without --resume.')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'--resume: {work_dir}/last_checkpoint names {path}, which does not exist. Give an '
            'existing checkpoint with --resume PATH.')
    return path


def distributed_setup(cfg):
    """Multi-process training (``--launcher pytorch``: tools/dist_train.sh, one node or several;
    ``--launcher slurm``: tools/slurm_train.sh) on any machine.

    The backend follows the device, whatever ``env_cfg.dist_cfg`` says or omits: ``nccl`` with
    CUDA, ``gloo`` without. Without CUDA the process group is started here, because MMEngine's
    ``init_dist`` calls ``torch.cuda.set_device`` first (for Slurm, the rank and rendezvous come
    from Slurm's variables first, :func:`slurm_environment`), the DDP wrapper gets no
    ``device_ids`` (MMEngine passes ``[LOCAL_RANK]``, a CUDA device, to a CPU module), and SyncBN
    becomes BN (:func:`cpu_batch_norm`).
    """
    import torch
    import torch.distributed as dist
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    cuda = torch.cuda.is_available()
    env_cfg = cfg.get('env_cfg') or {}
    dist_cfg = dict(env_cfg.get('dist_cfg') or {}, backend='nccl' if cuda else 'gloo')
    cfg.env_cfg = dict(env_cfg, dist_cfg=dist_cfg)
    if cuda:
        return
    cpu_batch_norm(cfg)
    if not dist.is_initialized():
        if cfg.launcher == 'slurm':
            slurm_environment()
        options = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        if 'timeout' in options:
            options['timeout'] = timedelta(seconds=options['timeout'])
        dist.init_process_group(backend='gloo', **options)
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))
    kind = wrapper.get('type', 'MMDistributedDataParallel')
    kind = MODEL_WRAPPERS.get(kind) if isinstance(kind, str) else kind
    if issubclass(kind, DistributedDataParallel):
        wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


SYNC_BN = ('SyncBN', 'MMSyncBN')  # torch's and mmcv's SyncBatchNorm, as configs name them


def cpu_batch_norm(cfg):
    """SyncBN -> BN in ``cfg.model`` (every ``dict(type='SyncBN')``, e.g. mmseg's base models'
    ``norm_cfg``) and no ``sync_bn`` conversion, for multi-process training on the CPU, with a
    line saying so: torch's SyncBatchNorm needs CUDA (DDP refuses a CPU module holding one:
    ``SyncBatchNorm layers only work with GPU modules``). Each process then normalises with the
    statistics of its own part of the batch, as a 1-process run on that part would."""
    paths = []

    def convert(node, path):
        if isinstance(node, dict):
            if node.get('type') in SYNC_BN:
                node['type'] = 'BN'
                paths.append(path)
            for key, value in node.items():
                convert(value, f'{path}.{key}')
        elif isinstance(node, (list, tuple)):
            for index, value in enumerate(node):
                convert(value, f'{path}.{index}')

    convert(cfg.model, 'model')
    if cfg.pop('sync_bn', None) is not None:
        paths.append('sync_bn')
    if paths:
        print(f'SyncBN -> BN for multi-process training on the CPU ({", ".join(paths)}): '
              'SyncBatchNorm needs CUDA; each process normalises with its own batch statistics',
              flush=True)


def slurm_environment():
    """torch.distributed's ``env://`` variables from Slurm's (as MMEngine's ``init_dist('slurm')``
    sets them, without its ``torch.cuda.set_device``): RANK from ``SLURM_PROCID``, WORLD_SIZE
    from ``SLURM_NTASKS``, LOCAL_RANK from ``SLURM_LOCALID``; MASTER_ADDR, when not set, is the
    first host of ``SLURM_NODELIST`` (``scontrol show hostname``), MASTER_PORT 29500 when not
    set (tools/slurm_train.sh sets it from PORT)."""
    import os
    import subprocess
    needed = ['SLURM_PROCID', 'SLURM_NTASKS'] + ([] if 'MASTER_ADDR' in os.environ else
                                                 ['SLURM_NODELIST'])
    missing = [k for k in needed if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher slurm: {", ".join(missing)} not set: start the processes with srun '
            '(a checkout\'s tools/slurm_train.sh does), or use --launcher pytorch with torchrun '
            '(torchrun -m kdzoo train ..., or a checkout\'s tools/dist_train.sh)')
    if 'MASTER_ADDR' not in os.environ:
        try:
            hosts = subprocess.run(['scontrol', 'show', 'hostname', os.environ['SLURM_NODELIST']],
                                   capture_output=True, text=True, check=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as err:
            raise RuntimeError(
                f'--launcher slurm: cannot name the first node of SLURM_NODELIST='
                f'{os.environ["SLURM_NODELIST"]} with scontrol ({err}); set MASTER_ADDR to its '
                'address') from err
        os.environ['MASTER_ADDR'] = hosts[0]
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


@contextmanager
def process_group_teardown():
    """Around a whole multi-process run (building its runner included): at the end, each process
    destroys its process group itself, before the interpreter exits (MMEngine's Runner never
    does).

    Left to the interpreter's exit, the group's backend threads can still hold work while Python
    is torn down, and a rank of a finished run dies with ``terminate called without an active
    exception`` (SIGABRT, exit code -6; torchrun then reports a failed job, see
    docs/troubleshooting.md). On success the ranks first meet at a barrier, so none destroys its
    group while another still communicates. On an error, a gloo group is destroyed without a
    barrier (the other ranks may never arrive; destroying a gloo group is local to the process)
    and the error propagates unchanged: the rank exits 1 with its own traceback, and torchrun stops
    the other ranks. An NCCL group is left to the exit then: destroying it aborts its
    communicators, which can wait on ranks still inside a collective. Without a process group (a
    1-process run) nothing happens.
    """
    import torch.distributed as dist
    try:
        yield
    except BaseException:
        if dist.is_initialized() and dist.get_backend() == 'gloo':
            dist.destroy_process_group()
        raise
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def dry_run(runner):
    """One batch through the model: print every distill item, the loss values and the monitor's
    ratios (a warning for a ratio outside ``kdzoo.monitor.RATIO_RANGE``), no update.

    The step is taken at the items' full weights: an item with ``warmup_iters`` would weigh only
    ``1 / warmup_iters`` of it at the first iteration, and its ratio (and the weight advised)
    would be off by that factor. The step is run as the first iteration past every warm-up
    (MMEngine's message hub ``iter``, which the distilling model reads), and the output says so.
    """
    import torch
    from mmengine.logging import MessageHub

    model = unwrap(runner.model)
    check_training_classes(runner)
    if hasattr(model, 'init_weights'):
        model.init_weights()  # as runner.train() does: pretrained backbones, head bias priors
    data = next(iter(runner.train_dataloader))
    for key in STREAM_KEYS:  # a run with a teacher cache: the step of a dry run is computed live
        data.pop(key, None)
    data = model.data_preprocessor(data, True)
    model.train()
    print(f'dry run: {type(model).__name__}, work_dir {runner.work_dir}')
    items = model.distiller.items if hasattr(model, 'distiller') else []
    warmup = max([item.warmup_iters for item in items] + [0])
    if warmup:
        print(f'  losses and ratios at full weight: the step is taken as iteration '
              f'{warmup + 1}, after every warm-up (warmup_iters up to {warmup}; at iteration 1 '
              'an item weighs 1 / warmup_iters of its weight)')
    with full_weights(MessageHub.get_current_instance(), warmup):
        if hasattr(model, 'describe_step'):
            for line in model.describe_step(**data):
                print('  ' + line)
        with torch.no_grad():
            losses = model(**data, mode='loss')
        if hasattr(model, 'distiller'):
            model.distiller.finite_checks.verify()  # the step's checks, as parse_losses reads them
    for key, value in losses.items():
        value = sum(value) if isinstance(value, (list, tuple)) else value
        print(f'  {key} = {float(value):.6g}')
    if items:
        weights = {item.name: item.weight for item in items}
        for line in ratio_warnings(losses, weights):
            print('  ' + line)
    return losses


@contextmanager
def full_weights(message_hub, warmup):
    """Inside, the iteration the distilling model reads (``message_hub``'s ``iter``, from 0) is
    ``warmup``: the first iteration at which every item with ``warmup_iters <= warmup`` weighs its
    full weight (:func:`kdzoo.distiller.warmup_factor`). Nothing changes for ``warmup=0``."""
    if not warmup:
        yield
        return
    previous = message_hub.get_info('iter')
    message_hub.update_info('iter', warmup)
    try:
        yield
    finally:
        if previous is None:
            message_hub.pop_info('iter')
        else:
            message_hub.update_info('iter', previous)
