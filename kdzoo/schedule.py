"""Iteration budgets: a config's iteration-based schedule stretched to another number of iterations,
and the distill items' warm-ups checked against the run's length.

One implementation for every command that changes a run's length: ``kdzoo compare`` and
``kdzoo plug-and-play`` (:func:`kdzoo.experiments.runs.budget_options` passes the rescaled
``param_scheduler`` with the new ``train_cfg.max_iters``), and ``kdzoo train`` with
``--cfg-options train_cfg.max_iters=N`` (:func:`with_rescaled_schedule`, applied by
:func:`kdzoo.runner.load_config`).
"""

# IterBasedTrainLoop's val_interval when a config sets none (mmengine/runner/loops.py).
DEFAULT_VAL_INTERVAL = 1000


def rescaled_schedule(cfg, iters):
    """The config's iteration-based ``param_scheduler`` stretched from its ``max_iters`` to
    ``iters`` (begin / end / T_max / total_steps scaled, every scheduler at least one iteration)."""
    ratio = iters / cfg.train_cfg.max_iters
    schedule = []
    for scheduler in cfg.get('param_scheduler') or []:
        scheduler = dict(scheduler)
        if scheduler.get('by_epoch', True):
            raise ValueError(f'the schedule must be iteration-based to be rescaled to {iters} '
                             f'iterations, got {scheduler}; keep the config\'s own length (no '
                             '--iters, no train_cfg.max_iters override), give an iteration-based '
                             'schedule (by_epoch=False) or set param_scheduler yourself')
        begin = round(scheduler.get('begin', 0) * ratio)
        scheduler['begin'] = begin
        if 'end' in scheduler:
            scheduler['end'] = max(begin + 1, round(scheduler['end'] * ratio))
        for key in ('T_max', 'total_steps'):
            if key in scheduler:
                scheduler[key] = max(1, round(scheduler[key] * ratio))
        if 'OneCycle' in str(scheduler.get('type', '')) and 'total_steps' in scheduler:
            scheduler['pct_start'] = runnable_pct_start(scheduler.get('pct_start', 0.3),
                                                        scheduler['total_steps'])
        schedule.append(scheduler)
    return schedule


def runnable_pct_start(pct_start, total_steps):
    """A OneCycle ``pct_start`` MMEngine (and torch) can run for ``total_steps``: they divide by
    the warm-up phase's length ``pct_start * total_steps - 1``, zero (``ZeroDivisionError`` at
    the first step) when the warm-up is exactly one step (e.g. the quick start's 0.1 over 10
    steps); that warm-up is lengthened by a thousandth of a step."""
    if abs(pct_start * total_steps - 1) < 1e-9:
        return 1.001 / total_steps
    return pct_start


def rescaled_val_interval(cfg, iters):
    """The config's ``train_cfg.val_interval`` stretched from its ``max_iters`` to ``iters`` (at
    least 1): the run validates as many times as the config's own."""
    interval = cfg.train_cfg.get('val_interval', DEFAULT_VAL_INTERVAL)
    return max(1, round(interval * iters / cfg.train_cfg.max_iters))


def is_iteration_based(cfg):
    return 'max_iters' in cfg.train_cfg


def overridden_max_iters(cfg_options):
    """The ``train_cfg.max_iters`` that ``cfg_options`` (dotted keys) set, or None."""
    if 'train_cfg.max_iters' in cfg_options:
        return cfg_options['train_cfg.max_iters']
    train_cfg = cfg_options.get('train_cfg')
    return train_cfg.get('max_iters') if isinstance(train_cfg, dict) else None


def overrides(cfg_options, key):
    """Whether ``cfg_options`` set ``key`` (``'param_scheduler'``, ``'train_cfg.val_interval'``)
    or a part of it, or give its parent as a whole dict (e.g. ``train_cfg=dict(...)``)."""
    parent = key.rpartition('.')[0]
    return any(k == key or k.startswith(key + '.') for k in cfg_options) or (
        bool(parent) and isinstance(cfg_options.get(parent), dict))


def with_rescaled_schedule(cfg, cfg_options, resume=False):
    """``cfg_options`` plus, when they change an iteration-based config's ``train_cfg.max_iters``,
    the config's ``param_scheduler`` and ``train_cfg.val_interval`` rescaled to the new length (as
    ``kdzoo compare --iters`` does), each unless ``cfg_options`` set it themselves; prints one
    line saying what was rescaled, from what to what. ``cfg`` is the config before the options.
    ``resume``: the run resumes from a checkpoint, whose schedulers' state (their length
    included) MMEngine restores over the config's: the schedule is then not rescaled, and the
    line says so.

    Without it, ``--cfg-options train_cfg.max_iters=4`` on a 500-iteration OneCycleLR config keeps
    ``total_steps=500`` (the learning rate never leaves its warm-up) and ``val_interval=500`` (no
    validation)."""
    iters = overridden_max_iters(cfg_options)
    if iters is None or not is_iteration_based(cfg) or iters == cfg.train_cfg.max_iters:
        return cfg_options
    if not isinstance(iters, int) or isinstance(iters, bool) or iters < 1:
        raise ValueError(f'train_cfg.max_iters must be a positive integer, got {iters!r}')
    before = cfg.train_cfg.max_iters
    added, rescaled, said = {}, [], []
    if resume and cfg.get('param_scheduler'):
        said.append('param_scheduler not rescaled: --resume restores the schedulers\' state, '
                    'their length included, from the checkpoint')
    elif cfg.get('param_scheduler') and not overrides(cfg_options, 'param_scheduler'):
        added['param_scheduler'] = rescaled_schedule(cfg, iters)
        spans = [describe_scheduler(old, new)
                 for old, new in zip(cfg.param_scheduler, added['param_scheduler'])]
        rescaled.append(f'param_scheduler {"; ".join(spans)}')
    if not overrides(cfg_options, 'train_cfg.val_interval'):
        interval = rescaled_val_interval(cfg, iters)
        added['train_cfg.val_interval'] = interval
        rescaled.append(f'val_interval {cfg.train_cfg.get("val_interval", DEFAULT_VAL_INTERVAL)} '
                        f'-> {interval}')
    if rescaled:
        said.insert(0, f'rescaled {", ".join(rescaled)}')
    if said:
        print(f'train_cfg.max_iters {before} -> {iters}: {"; ".join(said)} (give '
              'param_scheduler / train_cfg.val_interval in --cfg-options to set them yourself)',
              flush=True)
    return dict(cfg_options, **added)


def describe_scheduler(old, new):
    """``'OneCycleLR total_steps 500 -> 4'``: the keys of one scheduler that the rescaling
    changed."""
    changed = [f'{key} {old[key]} -> {new[key]}' for key in ('begin', 'end', 'T_max', 'total_steps')
               if key in new and old.get(key, 0) != new[key]]
    return f'{old.get("type")} {", ".join(changed) or "unchanged"}'


def check_warmup(items, max_iters):
    """A distill item whose ``warmup_iters`` is at least the run's ``max_iters`` never reaches its
    weight (its ramp, :func:`kdzoo.distiller.warmup_factor`, ends at iteration ``warmup_iters``):
    a ``ValueError`` naming both, and the fix."""
    for index, item in enumerate(items):
        if item.warmup_iters and item.warmup_iters >= max_iters:
            raise ValueError(
                f'distill item {index} ({item.name!r}): warmup_iters {item.warmup_iters} >= '
                f'max_iters {max_iters}: the item never reaches its weight {item.weight:g} in this '
                f'run; set warmup_iters below max_iters (e.g. --cfg-options '
                f'distill_cfg.losses.{index}.warmup_iters={max(1, max_iters // 10)}) or train '
                'longer')
