"""Fill a teacher-output cache ahead of training: the teacher runs, the student does not train.

    kdzoo cache-teacher CONFIG [--cache DIR] [--seeds 0,1,2] [--iters N | --epochs N]
                        [--cfg-options k=v ...] [--work-dir D]
                        [--launcher none|pytorch|slurm]

(``python tools/cache_teacher.py`` in a checkout is the same command.)

CONFIG is a distilling config as ``kdzoo train`` takes it (the runner is built the same way,
``kdzoo.runner.build_runner``, with the same ``--cfg-options``). The cache is
``distill_cfg.teacher.cache`` (its dtype / topk / readouts kept), its folder replaced by
``--cache DIR`` when given; with several teachers (``distill_cfg.teachers``) each teacher's
``cache``, and under ``--cache DIR`` every teacher's in ``DIR/<name>`` (below, DIR stands for
that folder). Where the caches go:

- without ``--seeds``: the config's own seed (``randomness.seed``; ``--cfg-options
  randomness.seed=K``), in DIR itself: the folder the config's training run reads;
- with ``--seeds``: one cache per seed, in ``DIR/seed<k>`` (whatever their number): the layout
  ``kdzoo compare --teacher-cache DIR`` reads, and a run of seed k reads with
  ``distill_cfg.teacher.cache=DIR/seed<k>``.

The training data is walked exactly as the training loop would take it (same sampler, epochs and
stream positions), the teacher's readouts of each batch stored as a training step would store
them, for the run's iterations (``--iters N``: the first N iterations; ``--epochs N``: N passes
over the training data; default: the whole run). A following ``kdzoo train`` run of the same
config and options then reads every step's teacher outputs instead of running the teacher (a
float32 cache: bit-identical to a live run); a run longer than the cache computes the rest live
and stores it. Rows already in the cache are read, not computed again.

The cache can be filled on another machine (e.g. a GPU box, with the same config, data and
teacher checkpoint) and copied: its manifest records what the outputs are a function of (teacher
checkpoint bytes and config, data files, pipeline, seed, readouts, dtype), and a run whose setup
differs stops with an error naming what differs. The stored outputs are those of the filling
device: a run on another kind of device (the CPU reading a GPU's cache) reads them as stored, so
it can differ in the last bits from a live run there, whose teacher would compute its own; the
manifest does not record the device (docs/teacher_cache.md).
"""
import argparse
import os
import os.path as osp
import time

from kdzoo.experiments.arguments import (
    add_launcher,
    config_name,
    parsed_launcher,
    positive_int,
    seed_list,
)
from kdzoo.runner import build_runner, load_config, process_group_teardown
from kdzoo.teacher_cache import configured_caches, human_bytes
from kdzoo.teacher_cache_fill import cache_options, fill, iterations_of


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        prog='kdzoo cache-teacher', description=__doc__.split('\n\n')[0],
        epilog='Usable on another machine (e.g. a GPU box) with the same config, data and '
        'teacher checkpoint: copy the cache folder back; '
        'its manifest says whether a run can read it.')
    parser.add_argument('config', type=config_name,
                        help='a distilling config (distill_cfg with a teacher)')
    parser.add_argument('--cache', metavar='DIR', help='the cache folder (default: the config\'s '
                        'distill_cfg.teacher.cache); with --seeds, DIR/seed<k> per seed')
    parser.add_argument('--seeds', type=seed_list, help='comma-separated seeds: one cache per '
                        'seed in DIR/seed<k> (default: the config\'s randomness.seed, in DIR)')
    length = parser.add_mutually_exclusive_group()
    length.add_argument('--iters', type=positive_int,
                        help='fill the first N training iterations (default: the whole run)')
    length.add_argument('--epochs', type=positive_int,
                        help='fill N passes over the training data (default: the whole run)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, as kdzoo train (the training run must '
                        'get the same ones)')
    parser.add_argument('--work-dir', help='where the runner logs (default: '
                        'work_dirs/cache_teacher/<config name>); nothing is trained or saved '
                        'there')
    add_launcher(parser, 'pytorch / slurm: several processes, each filling its own stream '
                 'positions (started as kdzoo train\'s: torchrun -m kdzoo cache-teacher ..., '
                 'or srun)')
    return parsed_launcher(parser.parse_args(argv))


def caches_of(args, cfg):
    """``{seed: the cfg-options pointing the teachers' caches at that seed's folders}`` (see the
    module docstring); ``SystemExit`` naming what is missing: the config's teachers and their
    cache settings first, then a cache folder, then the seed."""
    try:
        found = configured_caches(cfg)
    except ValueError as err:
        raise SystemExit(f'cache_teacher: {args.config}: {err}') from None
    if not found:
        raise SystemExit(f'cache_teacher: {args.config} has no distill_cfg: a teacher-output '
                         'cache needs a distilling config (docs/distill_cfg.md)')
    if not args.cache and all(spec is None for *_, spec in found):
        keys = [f'{key}.cache' for key, *_ in found]
        raise SystemExit(f'cache_teacher: no cache folder: give --cache DIR, or set '
                         f'{" or ".join(keys)} in {args.config}')
    seeds = args.seeds
    if not seeds:
        seed = (cfg.get('randomness') or {}).get('seed')
        if seed is None:
            raise SystemExit(f'cache_teacher: {args.config} sets no randomness.seed, so every '
                             'run draws its own and no cache could serve it: give --seeds, or set '
                             'randomness.seed (--cfg-options randomness.seed=0), for this command '
                             'and the training run')
        seeds = [seed]
    return {seed: cache_options(cfg, args.cache, seed if args.seeds else None) for seed in seeds}


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    caches = caches_of(args, cfg)
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'cache_teacher', name)
    filled = {}
    with process_group_teardown():  # multi-process: every rank exits cleanly
        for seed, cache_opts in caches.items():
            options = dict(args.cfg_options, **cache_opts,
                           **{'randomness.seed': seed,
                              'experiment_name': f'{name}_cache_seed{seed}'})
            runner = build_runner(args.config, cfg_options=options, work_dir=work_dir,
                                  launcher=args.launcher)
            iterations = iterations_of(runner, args.iters, args.epochs)
            folders = ', '.join(value if isinstance(value, str) else value['dir']
                                for value in cache_opts.values())
            print(f'cache_teacher: seed {seed}, {iterations} iterations -> {folders}', flush=True)
            start = time.perf_counter()
            filled[seed] = fill(runner, iterations)
            for cache in filled[seed].values():
                folder = cache.spec.dir
                size = sum(osp.getsize(osp.join(folder, f)) for f in os.listdir(folder))
                print(f'cache_teacher: {cache.summary()}; {human_bytes(size)} in {folder}, '
                      f'{time.perf_counter() - start:.1f} s', flush=True)
    return filled
