"""The training-time monitor: is each distill item doing anything, or drowning the task?

Logged every step with the losses (MMEngine logs every key of the loss dict and sums only the keys
containing ``loss``, so no monitor key contains that word):

- ``distill.ratio_<name>``: the item's weighted distill loss divided by the student's own task
  loss (the sum of its ``loss*`` keys). Around 0.1–10 both pull; a ratio of 0.001 means the item
  hardly acts, 1000 that it drowns the task loss — its weight is probably off by orders of
  magnitude (``--dry-run`` warns outside :data:`RATIO_RANGE`).
- ``distill.agree``: the fraction of samples (of pixels, for segmentation logit maps, compared on
  the smaller grid) where the student's top-1 class equals the teacher's, when both logits are
  read in the step; with several teachers (``distill_cfg.teachers``) ``distill.agree_<name>``
  per teacher whose logits the step reads.

Everything is computed from values the step already holds, detached: no extra forward, no
gradient. The one non-finite check of the project is :mod:`kdzoo.finite` (run by the distiller).
"""
import torch

from kdzoo import layout
from kdzoo.teacher_names import SINGLE

RATIO_RANGE = (0.01, 100.0)


def task_loss(losses):
    """The student's own loss: the sum of its ``loss*`` keys (tensors or lists of tensors), as
    MMEngine's ``parse_losses`` sums them; detached, on their device (nothing is read to the
    host: the skeleton reads the monitor's values with the step's other logged values)."""
    terms = [v.detach().float().mean() for key, value in losses.items() if 'loss' in key
             for v in (value if isinstance(value, (list, tuple)) else [value])]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def agreement(student, teacher):
    """Top-1 agreement of ``(B, K)`` logits, or of ``(B, K, H, W)`` logit maps per location (on the
    smaller grid)."""
    student, teacher = student.detach().float(), teacher.detach().float()
    if student.dim() == 4:
        student, teacher = layout.align(student, teacher, mode='bilinear')
    return (student.argmax(1) == teacher.argmax(1)).float().mean()


def agree_key(name):
    """The agreement's key of teacher ``name``: ``distill.agree`` for the one teacher of
    ``distill_cfg.teacher``, ``distill.agree_<name>`` for one of ``distill_cfg.teachers``."""
    return 'distill.agree' if name == SINGLE else f'distill.agree_{name}'


def monitor_values(task_losses, distill_losses, student_readouts, teacher_readouts):
    """``{'distill.ratio_<name>': ..., 'distill.agree': ...}`` of one step (see the module
    docstring); ``distill_losses`` are the distiller's ``{'distill.loss_<name>': tensor}``,
    ``teacher_readouts`` ``{teacher name: {readout: tensor}}``."""
    task = task_loss(task_losses)
    values = {}
    for key, value in distill_losses.items():
        name = key[len('distill.loss_'):]
        values[f'distill.ratio_{name}'] = value.detach().float() / task.to(value.device)
    student = student_readouts.get('logits')
    for name, readouts in teacher_readouts.items():
        teacher = readouts.get('logits')
        if torch.is_tensor(student) and torch.is_tensor(teacher) and \
                student.shape[:2] == teacher.shape[:2]:
            values[agree_key(name)] = agreement(student, teacher)
    return values


def ratio_warnings(losses, weights):
    """Warnings for the items whose ratio lies outside :data:`RATIO_RANGE` (``--dry-run``):
    ``losses`` holds the ``distill.ratio_<name>`` values of one step, ``weights`` maps each item
    name to its weight."""
    low, high = RATIO_RANGE
    lines = []
    for key, value in losses.items():
        if not key.startswith('distill.ratio_'):
            continue
        name, ratio = key[len('distill.ratio_'):], float(value)
        if not low <= ratio <= high:
            weight = weights.get(name, 1.0)
            hint = weight / ratio if ratio > 0 else float('inf')
            lines.append(
                f'warning: distill item {name!r}: weighted loss / task loss = {ratio:.3g}, outside '
                f'[{low:g}, {high:g}]: its weight {weight:g} is probably off by orders of '
                f'magnitude (a weight near {hint:.3g} would make the two equal)')
    return lines
