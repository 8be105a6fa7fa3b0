"""Iteration budgets: a config's iteration-based schedule stretched to another number of iterations.

One implementation for every tool that changes a run's length (``tools/compare.py``,
``tools/plug_and_play.py`` through :func:`kdzoo.experiments.runs.budget_options`).
"""


def rescaled_schedule(cfg, iters):
    """The config's iteration-based ``param_scheduler`` stretched from its ``max_iters`` to
    ``iters`` (begin / end / T_max / total_steps scaled, every scheduler at least one iteration)."""
    ratio = iters / cfg.train_cfg.max_iters
    schedule = []
    for scheduler in cfg.get('param_scheduler') or []:
        scheduler = dict(scheduler)
        if scheduler.get('by_epoch', True):
            raise ValueError(f'the schedule must be iteration-based to be rescaled to {iters} '
                             f'iterations, got {scheduler}; give the config\'s own schedule '
                             '(no --iters) or an iteration-based one')
        begin = round(scheduler.get('begin', 0) * ratio)
        scheduler['begin'] = begin
        if 'end' in scheduler:
            scheduler['end'] = max(begin + 1, round(scheduler['end'] * ratio))
        for key in ('T_max', 'total_steps'):
            if key in scheduler:
                scheduler[key] = max(1, round(scheduler[key] * ratio))
        schedule.append(scheduler)
    return schedule


def is_iteration_based(cfg):
    return 'max_iters' in cfg.train_cfg
