"""The teacher x student similarity of a distilling model over validation batches.

:func:`measure` runs the student and the frozen teacher (on its own inputs,
:meth:`kdzoo.adapters.base.DistillModel.teacher_inputs`), both in eval mode without gradients, on
each batch at once when its images share one size, else image by image as a batch-1 validation
runs them (each at its own size), every image's map then brought to the grid of the batch's first
image (:func:`kdzoo.layout.resize`). For every (teacher readout, student readout) pair it
accumulates the three sums of the minibatch CKA (:mod:`kdzoo.analysis.cka`), after
:func:`kdzoo.analysis.cka.common_grid` has brought the two to a common grid; where both have
logits with the same classes, also the top-1 agreement and ``KL(p_teacher ‖ p_student)`` (softmax
at temperature 1, every location of a logit map a sample). Only the sums are kept: memory does
not grow with the number of batches.
"""
from dataclasses import dataclass

import torch

from kdzoo.adapters import STUDENT_PREFIX
from kdzoo.analysis.cka import MIN_EXAMPLES, cka_from_terms, common_grid, hsic_terms
from kdzoo.analysis.readouts import readouts
from kdzoo.layout import align, as_samples, resize


@dataclass
class Similarity:
    """The CKA map of one state of the student (``weights``: ``'init'`` or ``'trained'``).

    ``cka[i, j]``: teacher readout ``teacher[i]`` with student readout ``student[j]``;
    ``shapes``: ``{'teacher' | 'student': {name: shape of one example}}``; ``agreement`` (top-1,
    a fraction) and ``kl`` (mean, nats) on the logits, ``None`` without a logit pair.
    """
    weights: str
    teacher: list
    student: list
    cka: torch.Tensor
    images: int
    batches: int
    shapes: dict
    agreement: float = None
    kl: float = None


def logit_terms(student, teacher):
    """``[agreeing samples, Σ KL(p_t ‖ p_s), samples]`` of one batch of logits ``(B, K)`` or
    logit maps ``(B, K, H, W)`` (bilinear to their common grid by :func:`kdzoo.layout.align`;
    every location a sample)."""
    if student.dim() == 4:
        student, teacher = align(student, teacher, mode='bilinear')
    log_s = as_samples(student).double().log_softmax(1)
    log_t = as_samples(teacher).double().log_softmax(1)
    agree = (log_s.argmax(1) == log_t.argmax(1)).sum().double()
    kl = (log_t.exp() * (log_t - log_s)).sum()
    return torch.stack([agree, kl, torch.tensor(float(log_s.shape[0]), dtype=kl.dtype,
                                                 device=kl.device)])


def has_logit_pair(student, teacher):
    return ('logits' in student and 'logits' in teacher
            and student['logits'].shape[1] == teacher['logits'].shape[1])


def stack(per_image):
    """``{name: (B, ...)}`` from readouts dicts of parts of a batch, each map resized to the grid
    of the first part's."""
    first = per_image[0]
    return {name: torch.cat([x[name] if x[name].dim() != 4 else
                             resize(x[name], first[name].shape[-2:]) for x in per_image])
            for name in first}


def one_image(batch, i):
    """The ``i``-th image of a collated batch (tensors or lists) as a batch of one."""
    return {key: value[i:i + 1] for key, value in batch.items()}


def batch_readouts(model, task, batch):
    """``(student, teacher)`` readouts of a collated ``batch``: one forward when its images share
    one size, else image by image (each at its own size, as a batch-1 validation runs it),
    stacked by :func:`stack`."""
    images = batch['inputs']
    parts = [batch] if len({tuple(x.shape) for x in images}) == 1 else [
        one_image(batch, i) for i in range(len(images))]
    student, teacher = [], []
    for part in parts:
        inputs = model.data_preprocessor(part, False)['inputs']
        student.append(readouts(task, model.student, inputs))
        with model.running_teacher(inputs):
            teacher.append(readouts(task, model.teacher, model.teacher_inputs(inputs)))
    return stack(student), stack(teacher)


def measure(model, task, loader, batches, weights):
    """The :class:`Similarity` of ``model`` (a ``DistillModel``) on the first ``batches`` batches
    of ``loader``; batches of fewer than 4 images are an error (the unbiased HSIC needs 4)."""
    model.eval()
    terms = logits = None
    images = count = 0
    with torch.no_grad():
        for batch in loader:
            if count == batches:
                break
            size = len(batch['inputs'])
            if size < MIN_EXAMPLES:
                raise ValueError(f'a batch of {size} images: the unbiased HSIC needs at least '
                                 f'{MIN_EXAMPLES} (use --batch-size >= {MIN_EXAMPLES} and a loader '
                                 'that drops the last, incomplete batch)')
            student, teacher = batch_readouts(model, task, batch)
            if terms is None:
                terms = torch.zeros(len(teacher), len(student), 3, dtype=torch.float64)
                shapes = {side: {name: tuple(x.shape[1:]) for name, x in values.items()}
                          for side, values in (('teacher', teacher), ('student', student))}
                logits = torch.zeros(3, dtype=torch.float64) if has_logit_pair(
                    student, teacher) else None
            for i, t in enumerate(teacher.values()):
                for j, s in enumerate(student.values()):
                    terms[i, j] += hsic_terms(*common_grid(s, t)).cpu()
            if logits is not None:
                logits += logit_terms(student['logits'], teacher['logits']).cpu()
            images += size
            count += 1
    if terms is None:
        raise ValueError('the validation loader gave no batch: it has fewer images than one batch '
                         '(lower --batch-size, at least 4)')
    agreement, kl = (None, None) if logits is None else (
        float(logits[0] / logits[2]), float(logits[1] / logits[2]))
    return Similarity(weights, list(teacher), list(student), cka_from_terms(terms), images, count,
                      shapes, agreement, kl)


def student_checkpoint(model, path):
    """``(weights, loaded checkpoint)``: the student's weights of the training checkpoint at
    ``path`` (a distilling run's, keys under ``distiller.student.``, the connectors ignored; or
    the student's own run's), refused unless they are exactly ``model.student``'s keys and shapes
    with finite values (a NaN student's CKA and snippet would be NaN)."""
    from kdzoo.checkpoint import (
        CheckpointError,
        listing,
        load_file,
        nonfinite_keys,
        state_dict_of,
        strip_prefix,
    )
    loaded = load_file(path)
    weights = state_dict_of(loaded)
    if any(key.startswith(STUDENT_PREFIX) for key in weights):
        weights = strip_prefix(weights, STUDENT_PREFIX)
    own = model.student.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    mismatched = sorted(k for k in own if k in weights and weights[k].shape != own[k].shape)
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f'--checkpoint {path} does not hold this config\'s student '
            f'({type(model.student).__name__}): missing keys {missing[:5]}, unexpected keys '
            f'{unexpected[:5]}, mismatched shapes {mismatched[:5]} (first 5 of each). Give a '
            'checkpoint of a run of this config, or of its student alone.')
    nonfinite = nonfinite_keys(model.student, weights)
    if nonfinite:
        raise CheckpointError(
            f'--checkpoint {path} holds non-finite values (NaN or Inf) in {len(nonfinite)} '
            f'tensors of the student: {listing(nonfinite)}; its similarities would be NaN. Give '
            'a checkpoint saved before the training diverged.')
    return weights, loaded
