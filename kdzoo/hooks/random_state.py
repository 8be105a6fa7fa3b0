"""Exact resume: the global random streams carried from iteration to iteration and checkpoint."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from kdzoo.rng import random_states, set_random_states


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Exact resume: every iteration starts from the random state the previous one ended with,
    and that state is saved in each checkpoint (``meta['random_states']``).

    What a training step draws from the global streams (dropout, drop-path, a loss's sampling
    such as DFRA's ``randperm``) then continues after a resume exactly as in the uninterrupted
    run, whatever ran between two iterations (a validation, the data loader starting an epoch,
    the teacher check and the data replay of a resumed run). The data stream itself is seeded per
    sample (:mod:`kdzoo.data_stream`). Added to every run by :func:`kdzoo.runner.build_runner`.
    """

    priority = 'VERY_HIGH'  # before any other hook of an iteration, the checkpoint hook included

    def __init__(self):
        self.states = None

    def before_train(self, runner):
        if runner.iter == 0:  # a new run (``load_from`` loads weights, not the random streams)
            self.states = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.states is not None:
            set_random_states(self.states)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.states = random_states()

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['meta']['random_states'] = self.states or random_states()

    def after_load_checkpoint(self, runner, checkpoint):
        self.states = checkpoint.get('meta', {}).get('random_states')
