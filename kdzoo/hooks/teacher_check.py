"""The teacher check: the teacher evaluated on the val set before training."""
import numbers

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from kdzoo.rng import isolated_rng
from kdzoo.wrappers import unwrap


@HOOKS.register_module()
class TeacherCheckHook(Hook):
    """Evaluate each teacher once on the validation set before training and log its metrics, so a
    wrongly loaded teacher (random weights, wrong classes) is seen before any time is spent.
    With several teachers (``distill_cfg.teachers``) each line and message-hub key names its
    teacher (``teacher_check/<name>/<metric>``; ``teacher_check/<metric>`` for the one teacher of
    ``distill_cfg.teacher``).

    Uses the runner's own val dataloader and evaluator; the distilling model's
    ``predicting_with_teacher()`` context makes its predict mode run the teacher.
    Disable with ``distill_cfg.teacher_check=False``.

    The check draws nothing from the student's random streams (the rule of kdzoo/rng.py): it
    runs inside :func:`kdzoo.rng.isolated_rng`, so the global torch (CUDA), numpy and Python
    states that the val dataloader's iterator (its base seed) and any random transform draw
    from are restored afterwards, and the student trains bit for bit the same with or without
    the check. The training dataloader, its sampler and generator are not touched.
    """

    priority = 'VERY_LOW'

    def before_train(self, runner):
        if runner.val_loop is None:
            runner.logger.warning('teacher check skipped: the config has no val_dataloader')
            return
        model = unwrap(runner.model)
        for name in model.teachers:
            with isolated_rng('kdzoo.teacher_check'):
                metrics = evaluate_teacher(runner, name)
            self.log(runner, name if model.multi_teacher else None, metrics)

    def log(self, runner, name, metrics):
        """One line of teacher ``name``'s metrics (``None``: the one teacher) and its infos."""
        metrics = {k: float(v) if isinstance(v, numbers.Real) else v for k, v in metrics.items()}
        which = 'teacher' if name is None else f'teacher {name!r}'
        runner.logger.info(f'teacher check ({which} on the val set): ' + (', '.join(
            f'{k}: {v:.4f}' if isinstance(v, float) else f'{k}: {v}' for k, v in metrics.items())
            or 'no metric (the evaluator returned none, e.g. mmdet\'s COCO metric when the '
               'teacher detects nothing)'))
        prefix = 'teacher_check/' if name is None else f'teacher_check/{name}/'
        for key, value in metrics.items():
            if isinstance(value, float):
                runner.message_hub.update_info(prefix + key, value)


def evaluate_teacher(runner, name=None):
    """Run the val loop's data through teacher ``name`` (the first when ``None``); returns the
    evaluator's metrics."""
    model = unwrap(runner.model)
    loop = runner.val_loop
    model.eval()
    with torch.no_grad(), model.predicting_with_teacher(name):
        for data in loop.dataloader:
            outputs = model.val_step(data)
            loop.evaluator.process(data_samples=outputs, data_batch=data)
    model.train()
    return loop.evaluator.evaluate(len(loop.dataloader.dataset))
