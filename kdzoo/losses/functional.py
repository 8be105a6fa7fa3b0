"""Math shared by several losses: input checks, InfoNCE, cross-rank gathering.

Every loss calls :func:`dense_pair` or :func:`logit_pair` first: they detach the teacher, cast both
sides to float32 (whatever the input dtype), check shapes and align grids through
:mod:`kdzoo.layout`, and raise errors that name the loss and both shapes.
"""
import math
import numbers

import torch
import torch.distributed as dist
import torch.nn.functional as F

from kdzoo import layout


def _check_batch(student, teacher, loss_name):
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f'{loss_name}: student and teacher batch sizes differ: student {tuple(student.shape)} '
            f'vs teacher {tuple(teacher.shape)}')


def dense_pair(student, teacher, loss_name, mode='pool', check_channels=True):
    """Check and align two dense maps ``(B, C, H, W)`` for ``loss_name``.

    Returns float32 ``(student, teacher.detach())`` on their common (smaller) grid. Different
    channel widths are an error that suggests a connector (``check_channels=False`` skips that
    check, for channel-free losses such as AT); 3-D token tensors are an error that points at the
    layout module.
    """
    for side, t in (('student', student), ('teacher', teacher)):
        if t.dim() != 4:
            hint = (' (this looks like (B, N, C) tokens: tap a reserved stage readout or convert '
                    "with kdzoo.layout.to_map(x, 'tokens', num_prefix_tokens))"
                    if t.dim() == 3 else '')
            raise ValueError(f'{loss_name}: {side} must be a dense map (B, C, H, W), got shape '
                             f'{tuple(t.shape)}{hint}')
    _check_batch(student, teacher, loss_name)
    if check_channels and student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f'{loss_name}: channel widths differ: student {tuple(student.shape)} has '
            f'{student.shape[1]} channels, teacher {tuple(teacher.shape)} has {teacher.shape[1]}. '
            f"Add a connector to the item, e.g. connectors=dict(proj=dict(type='Projector', "
            f'in_channels={student.shape[1]}, out_channels={teacher.shape[1]})) and '
            f"connector='proj', or tap a readout of equal width (e.g. 'dense_logits').")
    student, teacher = layout.align(student.float(), teacher.detach().float(), mode)
    return student, teacher


def aligned_logits(student, teacher, loss_name):
    """Check two logit tensors, ``(B, K)`` or dense ``(B, K, H, W)``: float32 ``(student,
    teacher.detach())``, dense maps of different resolution aligned bilinearly on the smaller
    grid."""
    if student.dim() != teacher.dim() or student.dim() not in (2, 4):
        raise ValueError(
            f'{loss_name}: expected logits (B, K) or dense logit maps (B, K, H, W) on both '
            f'sides, got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}')
    _check_batch(student, teacher, loss_name)
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f'{loss_name}: number of classes differs: student {tuple(student.shape)} has '
            f'{student.shape[1]}, teacher {tuple(teacher.shape)} has {teacher.shape[1]}; a logit '
            "loss needs the same label space (set the teacher's num_classes via cfg_options)")
    student, teacher = student.float(), teacher.detach().float()
    if student.dim() == 4:
        student, teacher = layout.align(student, teacher, mode='bilinear')
    return student, teacher


def logit_pair(student, teacher, loss_name):
    """:func:`aligned_logits`, flattened to samples: every location of a dense map is one sample.
    Returns float32 ``(student (N, K), teacher.detach() (N, K))``."""
    student, teacher = aligned_logits(student, teacher, loss_name)
    return layout.as_samples(student), layout.as_samples(teacher)


def label_grid(target, logits):
    """Label maps ``(B, H, W)`` resized (nearest, so the ignored label, whatever its value, stays
    itself) to the grid of ``(B, K, h, w)`` ``logits``; image labels ``(B,)``, ``None`` and maps
    already on that grid pass unchanged."""
    if target is None or target.dim() != 3 or logits.dim() != 4:
        return target
    if tuple(target.shape[-2:]) == tuple(logits.shape[-2:]):
        return target
    resized = F.interpolate(target[:, None].float(), size=logits.shape[-2:], mode='nearest')
    return resized[:, 0].to(target.dtype)


def sample_targets(target, num_samples, loss_name):
    """Class targets for ``num_samples`` samples: ``(B,)`` labels, repeated per location when the
    logits were dense maps (``(B, H, W)`` label maps are flattened as they are)."""
    if target is None:
        raise ValueError(f'{loss_name}: needs ground-truth labels; pass target=... (the '
                         'classification and segmentation adapters pass their labels; detection '
                         'has none per location)')
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


def info_nce(query, key, tau, weight=None, offset=0, reduction='mean'):
    """Batched InfoNCE with the diagonal as positives.

    ``query (..., N, D)`` and ``key (..., M, D)`` are L2-normalised here; ``logits = q kᵀ / tau``;
    row ``i`` has positive ``offset + i`` (``M >= N``: extra keys are negatives only, e.g. gathered
    from other ranks, where ``offset`` is this rank's first row, see :func:`gather_keys`).
    Returns the (optionally ``weight (..., N)``-weighted) mean cross-entropy, or with
    ``reduction='none'`` the cross-entropy of every row, shaped ``(..., N)``.
    """
    query = F.normalize(query, dim=-1)
    key = F.normalize(key, dim=-1)
    logits = query @ key.transpose(-1, -2) / tau
    target = torch.arange(offset, offset + query.shape[-2], device=query.device)
    target = target.expand(logits.shape[:-1])
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction='none')
    if reduction == 'none':
        return ce.reshape(logits.shape[:-1])
    if weight is None:
        return ce.mean()
    weight = weight.reshape(-1).to(ce)
    return (ce * weight).sum() / weight.sum().clamp_min(1e-12)


def gather_keys(x):
    """Keys from all ranks for a contrastive loss: ``(gather_with_grad(x), offset)``.

    ``offset = rank * B`` is the row of this rank's first sample in the gathered
    ``(world * B, ...)`` tensor (every rank holds the same ``B``); without a process group it is
    ``(x, 0)``.
    """
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    return gather_with_grad(x), rank * x.shape[0]


def sliding_windows(x, grids):
    """Multi-scale sliding-window average pooling of a ``(B, C, H, W)`` map.

    For each ``g`` in ``grids``: window ``k = ceil(H / g)`` (``ceil(W / g)`` along W), stride
    ``max(1, k // 2)`` (overlapping), every full window position, no padding, so
    ``(H - k) // s + 1`` positions along H (likewise W). ``g = 1`` is the global average.
    Returns one ``(B, L_g, C)`` tensor per grid, windows in row-major order.
    """
    height, width = x.shape[-2:]
    windows = []
    for g in grids:
        kh, kw = math.ceil(height / g), math.ceil(width / g)
        pooled = F.avg_pool2d(x, (kh, kw), (max(1, kh // 2), max(1, kw // 2)))
        windows.append(pooled.flatten(2).transpose(1, 2))
    return windows


def soft_kl(student, teacher, tau):
    """Per-sample ``KL(softmax(teacher / tau) ‖ softmax(student / tau))`` of ``(N, K)`` logits
    -> ``(N,)``.

    Computed from log-softmaxes, so it stays finite for saturated or all-equal logits.
    """
    log_p_t = F.log_softmax(teacher / tau, dim=-1)
    log_p_s = F.log_softmax(student / tau, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)


def labelled_pair(student, teacher, target, loss_name, ignore_index=255, checks=None):
    """:func:`logit_pair` plus one class label per sample: image labels ``(B,)`` repeated per
    location, or label maps ``(B, H, W)`` at any resolution, resized to the compared grid
    (:func:`label_grid`).

    Samples labelled ``ignore_index`` get the weight 0 (and the label 0, so the losses index
    nothing outside the classes); the losses weight each sample's term and divide by the weights'
    sum, so ignored samples count as if dropped, without reading the mask on the host.
    ``ignore_index`` is the student's own (the segmentation adapter passes its decode head's
    ``ignore_index`` to every loss, docs/distill_cfg.md); 255, mmseg's default, when no adapter
    says otherwise. Any other label outside ``[0, K)`` is a ValueError naming it: raised here, or,
    with ``checks`` (the distiller's :class:`kdzoo.finite.PendingChecks`, which it passes to every
    loss), when the step's flags are read (that sample weighs 0 until then). Returns float32
    ``(student (N, K), teacher (N, K), target (N,), weight (N,))``.
    """
    student, teacher = aligned_logits(student, teacher, loss_name)
    if target is not None:
        target = label_grid(target.to(student.device), student)
    student, teacher = layout.as_samples(student), layout.as_samples(teacher)
    target = sample_targets(target, student.shape[0], loss_name).to(student.device)
    keep = target != ignore_index
    inside = (target >= 0) & (target < student.shape[1])
    bad = keep & ~inside

    def report():
        raise ValueError(f'{loss_name}: label {int(target[bad][0])} is outside '
                         f'[0, {student.shape[1]}) for logits {tuple(student.shape)} '
                         f'(ignore_index={ignore_index})')
    if checks is None:
        if bad.any():
            report()
    else:
        checks.add_flag(~bad.any(), report)
    used = keep & inside
    return student, teacher, torch.where(used, target, 0), used.to(student.dtype)


def weighted_mean(values, weight):
    """``Σ_n w_n v_n / max(Σ_n w_n, 1)``: the mean over the samples of weight 1 (0 when none)."""
    return (weight * values).sum() / weight.sum().clamp(min=1)


def check_grids(grids, loss_name):
    """Grids of a multi-scale loss: a non-empty sequence of positive ints (checked at build
    time)."""
    grids = tuple(grids)
    if not grids or not all(isinstance(g, int) and g > 0 for g in grids):
        raise ValueError(f'{loss_name}: grids must be positive ints, e.g. (1, 2, 4); got {grids}')
    return grids


def check_temperature(tau, loss_name, what, default):
    """A loss's temperature: a finite number > 0 (checked at build time: 0 divides by zero, a
    negative one inverts the softmax, both silently)."""
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not 0 < tau < math.inf:
        raise ValueError(f'{loss_name}: tau must be a positive number ({what}, {default} by '
                         f'default), got {tau!r}')
    return tau
