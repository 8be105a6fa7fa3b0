"""The teacher x student similarity of a distilling model over validation batches, per teacher.

:func:`measure` runs the student and every frozen teacher of the model (``model.teachers``: the
one of ``distill_cfg.teacher``, or each of ``distill_cfg.teachers``; each on its own inputs,
:meth:`kdzoo.adapters.base.DistillModel.teacher_inputs`), all in eval mode without gradients, on
each batch at once when its images share one size, else image by image as a batch-1 validation
runs them (each at its own size), every image's map then brought to the grid of the batch's first
image (:func:`kdzoo.layout.resize`). The student runs once per batch, whatever the number of
teachers. For every teacher and every (teacher readout, student readout) pair it accumulates the
three sums of the minibatch CKA (:mod:`kdzoo.analysis.cka`), after
:func:`kdzoo.analysis.cka.common_grid` has brought the two to a common grid; where both have
logits with the same classes, also the top-1 agreement and ``KL(p_teacher ‖ p_student)`` (softmax
at temperature 1, every location of a logit map a sample). Only the sums are kept: memory does
not grow with the number of batches. A teacher's sums depend on that teacher and the student
only, so its map is the one a config with that teacher alone gives.
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
    a fraction) and ``kl`` (mean, nats) on the logits, ``None`` without a logit pair;
    ``teacher_name``: the teacher's name under ``distill_cfg.teachers``, ``None`` for the one
    teacher of ``distill_cfg.teacher``.
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
    teacher_name: str = None


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
    """``(student, {teacher name: teacher readouts})`` of a collated ``batch``, one entry per
    teacher of ``model.teachers``: one forward of each model when the batch's images share one
    size, else image by image (each at its own size, as a batch-1 validation runs it), stacked by
    :func:`stack`."""
    images = batch['inputs']
    parts = [batch] if len({tuple(x.shape) for x in images}) == 1 else [
        one_image(batch, i) for i in range(len(images))]
    student, teachers = [], {name: [] for name in model.teachers}
    for part in parts:
        inputs = model.data_preprocessor(part, False)['inputs']
        student.append(readouts(task, model.student, inputs))
        with model.running_teacher(inputs):
            for name, teacher in model.teachers.items():
                teachers[name].append(readouts(task, teacher, model.teacher_inputs(inputs, name)))
    return stack(student), {name: stack(values) for name, values in teachers.items()}


class Sums:
    """The running sums of one teacher against the student: the three CKA sums of every
    (teacher readout, student readout) pair and, with a logit pair, the logit terms."""

    def __init__(self, student, teacher):
        self.terms = torch.zeros(len(teacher), len(student), 3, dtype=torch.float64)
        self.shapes = {side: {name: tuple(x.shape[1:]) for name, x in values.items()}
                       for side, values in (('teacher', teacher), ('student', student))}
        self.logits = torch.zeros(3, dtype=torch.float64) if has_logit_pair(
            student, teacher) else None
        self.names = list(teacher), list(student)

    def add(self, student, teacher):
        for i, t in enumerate(teacher.values()):
            for j, s in enumerate(student.values()):
                self.terms[i, j] += hsic_terms(*common_grid(s, t)).cpu()
        if self.logits is not None:
            self.logits += logit_terms(student['logits'], teacher['logits']).cpu()

    def similarity(self, weights, images, batches, teacher_name):
        agreement, kl = (None, None) if self.logits is None else (
            float(self.logits[0] / self.logits[2]), float(self.logits[1] / self.logits[2]))
        return Similarity(weights, *self.names, cka_from_terms(self.terms), images, batches,
                          self.shapes, agreement, kl, teacher_name)


def measure(model, task, loader, batches, weights):
    """``[Similarity]`` of ``model`` (a ``DistillModel``) on the first ``batches`` batches of
    ``loader``: one per teacher, in ``model.teachers`` order (one for ``distill_cfg.teacher``),
    each named by ``teacher_name`` under ``distill_cfg.teachers``; batches of fewer than 4 images
    are an error (the unbiased HSIC needs 4)."""
    model.eval()
    sums = None
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
            student, teachers = batch_readouts(model, task, batch)
            if sums is None:
                sums = {name: Sums(student, teacher) for name, teacher in teachers.items()}
            for name, teacher in teachers.items():
                sums[name].add(student, teacher)
            images += size
            count += 1
    if sums is None:
        raise ValueError('the validation loader gave no batch: it has fewer images than one batch '
                         '(lower --batch-size, at least 4)')
    return [one.similarity(weights, images, count, name if model.multi_teacher else None)
            for name, one in sums.items()]


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
