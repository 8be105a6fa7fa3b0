"""MSDCRD: Contrastive Representation Distillation via Multi-Scale Feature Decoupling.

Paper: arXiv 2502.05835. No official code exists: this is a **reconstruction from the abstracts**
(close to its apparent ancestor SDD, CVPR 2024); ``docs/losses.md`` lists the
choices. Parameter-free, single batch (no memory bank).

Both maps ``(B, C, H, W)`` (equal ``C``, e.g. dense logits) are pooled to the smaller grid, then
decoupled into local samples by multi-scale sliding windows
(:func:`~kdzoo.losses.functional.sliding_windows`: per grid ``g`` window ``k = ceil(H / g)``,
stride ``max(1, k // 2)``): ``L = Σ_g L_g`` windows per image, ``g = 1`` the global one.

Sample categorization: a window is *consistent* when the teacher's argmax over channels there
equals the global prediction (argmax of the teacher's global average, or ``target`` ``(B,)`` when
given; label maps ``(B, H, W)`` hold no class per image and are not used), *complementary*
otherwise; weights ``w = 1`` or ``w_comp``. Argmax over channels means something for logit
readouts; on plain feature maps it is a heuristic (``w_comp=1`` turns it off).

With ``s``/``t`` the L2-normalised student/teacher window vectors and
``ℓ(q, K, i) = -log softmax(q Kᵀ / tau)_i``:

- sample-wise, per window ``r`` across images (batched ``(L, B, B)``):
  ``L_sample = Σ_{r,b} w_{b,r} ℓ(s_{b,r}, t_{:,r}, b) / Σ w``  (batch of 1: 0)
- feature-wise, per image across the windows of one scale (scales with one window skipped):
  ``L_feature = Σ_{b,r} w_{b,r} ℓ(s_{b,r}, t_{b,scale(r)}, r) / Σ w``; computed as one
  ``(B, L, L)`` product with the pairs of windows of different scales masked out (``-inf``: the
  same softmax as each scale's own ``(B, L_g, L_g)``)
- ``MSDCRD = w_sample · L_sample + w_feature · L_feature``.

The windows of all scales come from one matrix product per map and are normalised once for both
terms.

Defaults ``tau=0.1, grids=(1, 2, 4), w_sample=1, w_feature=1, w_comp=2``. With
``gather_distributed=True`` the sample-wise keys come from every rank and the weighted means use
the global weight total, so the mean of the ranks' losses is the loss of the whole batch.
"""
import functools
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import (
    check_grids,
    check_temperature,
    dense_pair,
    diagonal_ce,
    gather_keys,
    sliding_windows,
)
from kdzoo.registry import MODELS

NAME = 'MSDCRDLoss'


def global_prediction(teacher, target):
    """The class each window is compared with: ``target (B,)`` or the teacher's global argmax
    (also for label maps ``(B, H, W)``, which hold no single class per image)."""
    if target is None or target.dim() == 3:
        return teacher.mean((-2, -1)).argmax(1)
    if target.shape != (teacher.shape[0],):
        raise ValueError(
            f'{NAME}: target must hold one class label per image, shape ({teacher.shape[0]},), got '
            f'{tuple(target.shape)}; pass use_target=False to categorise windows by the '
            "teacher's global prediction instead")
    return target.to(teacher.device).long()


def window_weights(teacher_windows, prediction, w_comp):
    """``(L, B)`` weights of ``(L, B, C)`` windows: 1 where the teacher's window argmax is
    ``prediction (B,)``, else w_comp."""
    consistent = teacher_windows.argmax(-1) == prediction
    return torch.where(consistent, 1.0, float(w_comp)).to(teacher_windows)


@functools.lru_cache(maxsize=32)
def block_masks(sizes, device):
    """For windows of scales with ``sizes`` windows each: ``(L, L)`` True off the diagonal blocks
    (pairs of windows of different scales), and ``(L,)`` 1.0 for windows of a scale with more than
    one window, 0.0 otherwise. Built once per sizes and device."""
    with torch.inference_mode(False):  # usable by autograd even if first built in inference
        scale = torch.arange(len(sizes)).repeat_interleave(torch.tensor(sizes))
        multi = torch.tensor([float(n > 1) for n in sizes]).repeat_interleave(torch.tensor(sizes))
        return (scale[:, None] != scale[None, :]).to(device), multi.to(device)


def weighted_mean(values, weight, distributed):
    """``Σ w·v / Σ w``; with ``distributed`` the denominator is the ranks' mean weight total, so
    the mean of the ranks' results is the weighted mean over all ranks."""
    total = weight.sum()
    if distributed and dist.is_available() and dist.is_initialized():
        total = total.clone()
        dist.all_reduce(total)
        total = total / dist.get_world_size()
    return (values * weight).sum() / total.clamp_min(1e-12)


def msdcrd_loss(student, teacher, tau=0.1, grids=(1, 2, 4), w_sample=1.0, w_feature=1.0,
                w_comp=2.0, target=None, gather_distributed=False):
    """MSDCRD between dense maps ``student``, ``teacher`` ``(B, C, H, W)``; see the module doc.
    Computed in float32 even under autocast (its window pooling is a matrix product, which
    autocast would run in half precision)."""
    with torch.autocast(student.device.type, enabled=False):
        return float32_msdcrd(student, teacher, tau, grids, w_sample, w_feature, w_comp, target,
                              gather_distributed)


def float32_msdcrd(student, teacher, tau, grids, w_sample, w_feature, w_comp, target,
                   gather_distributed):
    student, teacher = dense_pair(student, teacher, NAME)
    prediction = global_prediction(teacher, target)
    s, sizes = sliding_windows(student, grids)  # (L, B, C), windows of every scale
    t, _ = sliding_windows(teacher, grids)
    weight = window_weights(t, prediction, w_comp)  # (L, B)
    s, t = F.normalize(s, dim=-1), F.normalize(t, dim=-1)

    keys, offset = gather_keys(t, dim=1) if gather_distributed else (t, 0)
    ce = diagonal_ce(torch.bmm(s, keys.transpose(1, 2)) / tau, offset)  # (L, B): across images
    loss = w_sample * weighted_mean(ce, weight, gather_distributed)

    if any(n > 1 for n in sizes):
        # Across the windows of one scale, every scale at once: (B, L, L) similarities, pairs of
        # windows of different scales masked out; scales of one window take no part (weight 0).
        off_block, multi = block_masks(sizes, s.device)
        s, t = s.transpose(0, 1), t.transpose(0, 1)
        logits = (torch.bmm(s, t.transpose(1, 2)) / tau).masked_fill(off_block, -math.inf)
        loss = loss + w_feature * weighted_mean(diagonal_ce(logits), weight.t() * multi,
                                                gather_distributed)
    return loss


@MODELS.register_module()
class MSDCRDLoss(nn.Module):
    """Multi-scale decoupled contrastive distillation (reconstruction, arXiv 2502.05835).

    Args:
        tau: InfoNCE temperature.
        grids: sliding-window grids; window ``ceil(H / g)``, stride half of it.
        w_sample, w_feature: weights of the sample-wise and feature-wise terms.
        w_comp: weight of complementary windows (1 disables the categorization).
        gather_distributed: take sample-wise negatives from every rank (with gradient).
        use_target: categorise against ``target`` labels when the distiller passes them.
    """

    def __init__(self, tau=0.1, grids=(1, 2, 4), w_sample=1.0, w_feature=1.0, w_comp=2.0,
                 gather_distributed=False, use_target=True):
        super().__init__()
        self.tau = check_temperature(tau, NAME, 'the InfoNCE temperature', 0.1)
        self.grids = check_grids(grids, NAME)
        self.w_sample = w_sample
        self.w_feature = w_feature
        self.w_comp = w_comp
        self.gather_distributed = gather_distributed
        self.use_target = use_target

    def forward(self, student, teacher, target=None, **ctx):
        return msdcrd_loss(student, teacher, self.tau, self.grids, self.w_sample, self.w_feature,
                           self.w_comp, target if self.use_target else None,
                           self.gather_distributed)
