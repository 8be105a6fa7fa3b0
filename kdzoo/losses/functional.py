"""Math shared by several losses: input checks, InfoNCE, cross-rank gathering.

Every loss calls :func:`dense_pair` or :func:`logit_pair` first: they detach the teacher, cast both
sides to float32 (whatever the input dtype), check shapes and align grids through
:mod:`kdzoo.layout`, and raise errors that name the loss and both shapes (LFCC's average pooling
aligns the grids itself: it calls :func:`check_dense_pair`, the same checks).
"""
import functools
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


def check_dense_pair(student, teacher, loss_name, check_channels=True):
    """The checks of :func:`dense_pair`, without the alignment: for a loss that folds the pooling
    to the common grid into its own pooling (LFCC)."""
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


def dense_pair(student, teacher, loss_name, mode='pool', check_channels=True):
    """Check and align two dense maps ``(B, C, H, W)`` for ``loss_name``.

    Returns float32 ``(student, teacher.detach())`` on their common (smaller) grid. Different
    channel widths are an error that suggests a connector (``check_channels=False`` skips that
    check, for channel-free losses such as AT); 3-D token tensors are an error that points at the
    layout module.
    """
    check_dense_pair(student, teacher, loss_name, check_channels)
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


def diagonal_ce(logits, offset=0):
    """Cross-entropy of every row of ``logits (..., N, M)``, row ``i``'s target being column
    ``offset + i``: ``(..., N)``."""
    n, m = logits.shape[-2:]
    target = torch.arange(offset, offset + n, device=logits.device).expand(logits.shape[:-1])
    ce = F.cross_entropy(logits.reshape(-1, m), target.reshape(-1), reduction='none')
    return ce.view(logits.shape[:-1])


@functools.lru_cache(maxsize=32)
def group_matrix(sizes, device):
    """``(len(sizes), Σ sizes)`` 0/1 matrix: row ``g`` sums the ``sizes[g]`` consecutive slices of
    group ``g`` (built once per sizes and device)."""
    with torch.inference_mode(False):  # usable by autograd even if first built in inference
        return torch.block_diag(*(torch.ones(1, n) for n in sizes)).to(device)


@functools.lru_cache(maxsize=32)
def group_weights(counts, device):
    """``counts / Σ counts`` as a tensor (built once per counts and device)."""
    with torch.inference_mode(False):
        return (torch.tensor(counts, dtype=torch.float32) / sum(counts)).to(device)


def grouped_info_nce(query, key, sizes, tau, offset=0, counts=None):
    """InfoNCE of several groups of vectors at once: the mean over groups of each group's mean
    InfoNCE, group ``g`` counted ``counts[g]`` times (default once).

    ``query (J, N, D)`` and ``key (J, M, D)`` hold the vectors in slices: group ``g`` is the
    ``sizes[g]`` consecutive slices after those of the groups before it, and its vector ``q_n``
    (``k_m``) is the concatenation of its slices, ``(sizes[g] · D,)`` (e.g. the cells of one
    pooling grid). Per group, ``cos(q_n, k_m) = q_n·k_m / (max(‖q_n‖, 1e-12) max(‖k_m‖, 1e-12))``
    (the cosine of ``F.normalize``d vectors) and ``L = −1/N Σ_n log softmax_m(cos(q_n, k_m) /
    tau)_{offset + n}``: row ``n``'s positive is key ``offset + n`` (``M >= N``: extra keys are
    negatives only, e.g. gathered from other ranks, where ``offset`` is this rank's first row, see
    :func:`gather_keys`). The dot products and squared norms of all groups come from one batched
    product and one reduction, summed per group.
    """
    groups = group_matrix(tuple(sizes), query.device)
    n, m = query.shape[1], key.shape[1]

    def norms(x):  # (groups, rows); max(√s, ε) as √max(s, ε²): a zero vector gets a zero gradient
        return (groups @ (x * x).sum(-1)).clamp_min(1e-24).sqrt()

    dots = (groups @ torch.bmm(query, key.transpose(1, 2)).flatten(1)).view(-1, n, m)
    logits = dots / (norms(query)[:, :, None] * norms(key)[:, None, :] * tau)
    ce = diagonal_ce(logits, offset).mean(1)
    return ce @ group_weights(tuple(counts or [1] * len(sizes)), query.device)


def gather_keys(x, dim=0):
    """Keys from all ranks for a contrastive loss: ``(x gathered along dim, offset)``, with the
    gradient path to every rank's part (:func:`gather_with_grad`).

    ``offset = rank * x.shape[dim]`` is the index of this rank's first sample in the gathered
    tensor (every rank holds the same number); without a process group it is ``(x, 0)``.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return x, 0
    gathered = gather_with_grad(x.movedim(dim, 0).contiguous())
    if gathered.requires_grad and dim != 0:
        # the gradient arrives through movedim, permuted; all_gather's backward sends each rank's
        # part with a collective, which needs contiguous tensors
        gathered.register_hook(torch.Tensor.contiguous)
    return gathered.movedim(0, dim), dist.get_rank() * x.shape[dim]


@functools.lru_cache(maxsize=32)
def window_matrix(height, width, grids, device):
    """``((L, height·width), sizes)``: row ``l`` averages window ``l`` of :func:`sliding_windows`
    on a ``height × width`` map; ``sizes``: the windows of each grid. Built once per size and
    device."""
    with torch.inference_mode(False):  # usable by autograd even if first built in inference
        rows, sizes = [], []
        for g in grids:
            kh, kw = math.ceil(height / g), math.ceil(width / g)
            tops = range(0, height - kh + 1, max(1, kh // 2))
            lefts = range(0, width - kw + 1, max(1, kw // 2))
            for top in tops:
                for left in lefts:
                    window = torch.zeros(height, width)
                    window[top:top + kh, left:left + kw] = 1 / (kh * kw)
                    rows.append(window.flatten())
            sizes.append(len(tops) * len(lefts))
        return torch.stack(rows).to(device), tuple(sizes)


def sliding_windows(x, grids):
    """Multi-scale sliding-window average pooling of a ``(B, C, H, W)`` map.

    For each ``g`` in ``grids``: window ``k = ceil(H / g)`` (``ceil(W / g)`` along W), stride
    ``max(1, k // 2)`` (overlapping), every full window position, no padding, so
    ``(H - k) // s + 1`` positions along H (likewise W). ``g = 1`` is the global average.
    Returns ``(windows (L, B, C), sizes)``: the means of every window, grid after grid, windows
    in row-major order, and the windows of each grid (``L = Σ sizes``). One matrix product for all
    grids (on CPU faster than one ``avg_pool2d`` per grid).
    """
    b, c, height, width = x.shape
    weights, sizes = window_matrix(height, width, tuple(grids), x.device)
    return (weights @ x.reshape(b * c, height * width).t()).view(-1, b, c), sizes


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
