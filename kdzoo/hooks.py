"""MMEngine hooks shared by all task adapters: the teacher check and exact resume."""
import numbers

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from kdzoo.rng import random_states, set_random_states


@HOOKS.register_module()
class TeacherCheckHook(Hook):
    """Evaluate the teacher once on the validation set before training and log its metrics, so a
    wrongly loaded teacher (random weights, wrong classes) is seen before any time is spent.

    Uses the runner's own val dataloader and evaluator; the distilling model's
    ``predicting_with_teacher()`` context makes its predict mode run the teacher.
    Disable with ``distill_cfg.teacher_check=False``.
    """

    priority = 'VERY_LOW'

    def before_train(self, runner):
        if runner.val_loop is None:
            runner.logger.warning('teacher check skipped: the config has no val_dataloader')
            return
        metrics = {k: float(v) if isinstance(v, numbers.Real) else v
                   for k, v in evaluate_teacher(runner).items()}
        runner.logger.info('teacher check (teacher on the val set): ' + ', '.join(
            f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}' for k, v in metrics.items()))
        for key, value in metrics.items():
            if isinstance(value, float):
                runner.message_hub.update_info(f'teacher_check/{key}', value)


def unwrap(model):
    """The model inside a DDP (or other MMEngine) wrapper, or the model itself."""
    return model.module if is_model_wrapper(model) else model


def evaluate_teacher(runner):
    """Run the val loop's data through the teacher; returns the evaluator's metrics."""
    model = unwrap(runner.model)
    loop = runner.val_loop
    model.eval()
    with torch.no_grad(), model.predicting_with_teacher():
        for data in loop.dataloader:
            outputs = model.val_step(data)
            loop.evaluator.process(data_samples=outputs, data_batch=data)
    model.train()
    return loop.evaluator.evaluate(len(loop.dataloader.dataset))


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


def dataset_classes(dataset):
    """The class names a dataset declares (``metainfo['classes']``), or ``None``."""
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    return None if classes is None else [str(c) for c in classes]


def check_split_classes(runner):
    """The train and val datasets must name the same classes in the same order: labels are class
    indices, so a class folder missing from one split shifts every label after it (the val top-1
    of a good teacher drops to chance, and nothing else says why)."""
    if runner.val_loop is None:
        return
    train = dataset_classes(runner.train_dataloader.dataset)
    val = dataset_classes(runner.val_loop.dataloader.dataset)
    if train is None or val is None or train == val:
        return
    only_train = [c for c in train if c not in val]
    only_val = [c for c in val if c not in train]
    what = (f'only in train: {only_train}; only in val: {only_val}' if only_train or only_val
            else f'the same classes in another order: train {train}, val {val}')
    raise ValueError(
        f'the train and val datasets name different classes ({len(train)} in train, {len(val)} '
        f'in val; {what}). Labels are class indices, so they would mean other classes in val; '
        'give both splits the same classes (the same class folders).')


@HOOKS.register_module()
class SplitClassesHook(Hook):
    """Before training, :func:`check_split_classes`; added to every run by
    :func:`kdzoo.runner.build_runner` (``--dry-run`` calls the check itself)."""

    priority = 'VERY_HIGH'  # before the teacher check evaluates on the val set

    def before_train(self, runner):
        check_split_classes(runner)
