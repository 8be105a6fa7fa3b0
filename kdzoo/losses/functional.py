"""Math shared by several losses: input checks, InfoNCE, cross-rank gathering.

Every loss calls :func:`dense_pair` or :func:`logit_pair` first: they detach the teacher, cast both
sides to float32 (whatever the input dtype), check shapes and align grids through
:mod:`kdzoo.layout`, and raise errors that name the loss and both shapes.
"""
import torch
import torch.distributed as dist
import torch.nn.functional as F

from kdzoo import layout


def _check_batch(student, teacher, loss_name):
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f'{loss_name}: student and teacher batch sizes differ: student {tuple(student.shape)} '
            f'vs teacher {tuple(teacher.shape)}')


def dense_pair(student, teacher, loss_name, mode='pool'):
    """Check and align two dense maps ``(B, C, H, W)`` for ``loss_name``.

    Returns float32 ``(student, teacher.detach())`` on their common (smaller) grid. Different
    channel widths are an error that suggests a connector; 3-D token tensors are an error that
    points at the layout module.
    """
    for side, t in (('student', student), ('teacher', teacher)):
        if t.dim() != 4:
            hint = (' (this looks like (B, N, C) tokens: tap a reserved stage readout or convert with '
                    "kdzoo.layout.to_map(x, 'tokens', num_prefix_tokens))" if t.dim() == 3 else '')
            raise ValueError(f'{loss_name}: {side} must be a dense map (B, C, H, W), got shape '
                             f'{tuple(t.shape)}{hint}')
    _check_batch(student, teacher, loss_name)
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f'{loss_name}: channel widths differ: student {tuple(student.shape)} has '
            f'{student.shape[1]} channels, teacher {tuple(teacher.shape)} has {teacher.shape[1]}. '
            f"Add a connector to the item, e.g. connectors=dict(proj=dict(type='Projector', "
            f'in_channels={student.shape[1]}, out_channels={teacher.shape[1]})) and '
            f"connector='proj', or tap a readout of equal width (e.g. 'dense_logits').")
    student, teacher = layout.align(student.float(), teacher.detach().float(), mode)
    return student, teacher


def logit_pair(student, teacher, loss_name):
    """Check two logit tensors, ``(B, K)`` or dense ``(B, K, H, W)``, and flatten them to samples.

    Dense logit maps of different resolution are aligned bilinearly on the smaller grid; every
    location is one sample. Returns float32 ``(student (N, K), teacher.detach() (N, K))``.
    """
    if student.dim() != teacher.dim() or student.dim() not in (2, 4):
        raise ValueError(
            f'{loss_name}: expected logits (B, K) or dense logit maps (B, K, H, W) on both sides, got '
            f'student {tuple(student.shape)} and teacher {tuple(teacher.shape)}')
    _check_batch(student, teacher, loss_name)
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f'{loss_name}: number of classes differs: student {tuple(student.shape)} has '
            f'{student.shape[1]}, teacher {tuple(teacher.shape)} has {teacher.shape[1]}; a logit loss '
            "needs the same label space (set the teacher's num_classes via cfg_options)")
    student, teacher = student.float(), teacher.detach().float()
    if student.dim() == 4:
        student, teacher = layout.align(student, teacher, mode='bilinear')
    return layout.as_samples(student), layout.as_samples(teacher)


def sample_targets(target, num_samples, loss_name):
    """Class targets for ``num_samples`` samples: ``(B,)`` labels, repeated per location when the
    logits were dense maps (``(B, H, W)`` label maps are flattened as they are)."""
    if target is None:
        raise ValueError(f'{loss_name}: needs ground-truth labels; pass target=... (the adapters do '
                         'this from the data samples)')
    target = target.reshape(-1).long()
    if target.numel() == num_samples:
        return target
    if num_samples % target.numel() == 0:
        return target.repeat_interleave(num_samples // target.numel())
    raise ValueError(f'{loss_name}: {target.numel()} labels do not match {num_samples} samples')


def gather_with_grad(x):
    """Concatenate ``x`` from all ranks along dim 0, keeping the gradient path to every rank's part.

    Without an initialised process group this is the identity.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(x), dim=0)


def info_nce(query, key, tau, weight=None):
    """Batched InfoNCE with the diagonal as positives.

    ``query (..., N, D)`` and ``key (..., M, D)`` are L2-normalised here; ``logits = q kᵀ / tau``;
    row ``i`` has positive ``i`` (``M >= N``: extra keys are negatives only, e.g. gathered from
    other ranks). Returns the (optionally ``weight (..., N)``-weighted) mean cross-entropy.
    """
    query = F.normalize(query, dim=-1)
    key = F.normalize(key, dim=-1)
    logits = query @ key.transpose(-1, -2) / tau
    target = torch.arange(query.shape[-2], device=query.device)
    target = target.expand(logits.shape[:-1])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction='none')
    if weight is None:
        return ce.mean()
    weight = weight.reshape(-1).to(ce)
    return (ce * weight).sum() / weight.sum().clamp_min(1e-12)
