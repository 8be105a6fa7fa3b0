"""RKD: relational knowledge distillation.

Paper: Park, Kim, Lu, Cho, "Relational Knowledge Distillation", CVPR 2019, arXiv:1904.05068.

With ``e_i`` the embedding of image ``i`` (dense maps are globally average-pooled first):

- distance: ``ψ_D(i, j) = ‖e_i − e_j‖ / μ`` with ``μ`` the mean distance over the ``B(B−1)`` pairs
  ``i ≠ j``; ``L_D = mean_{i,j} smooth_L1(ψ_D^s, ψ_D^t)``;
- angle: ``ψ_A(i, j, k) = ⟨(e_j − e_i)/‖e_j − e_i‖, (e_k − e_i)/‖e_k − e_i‖⟩``;
  ``L_A = mean_{i,j,k} smooth_L1(ψ_A^s, ψ_A^t)``;
- ``RKD = w_distance · L_D + w_angle · L_A``.

As the official code (distances ``sqrt(clamp(d², 1e-12))`` with a zero diagonal); the mean is
taken over off-diagonal pairs so that a batch of 1 gives 0. Below 3 images both relations are the
same for any embeddings (one distance, normalised to 1; angles 0 or 1), so the loss is 0 with
zero gradient: a warning says so, once per loss. Defaults: ``w_distance=25.0,
w_angle=50.0``. Inputs: vectors ``(B, C)`` or dense maps ``(B, C, H, W)``; the widths may differ
(only relations between images are compared).
"""
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import _check_batch
from kdzoo.registry import MODELS

NAME = 'RKDLoss'


def as_embeddings(x, side):
    """Vectors ``(B, C)`` as they are; dense maps ``(B, C, H, W)`` globally average-pooled."""
    if x.dim() == 4:
        return x.float().mean((2, 3))
    if x.dim() == 2:
        return x.float()
    raise ValueError(f'{NAME}: {side} must be vectors (B, C) or a dense map (B, C, H, W), got '
                     f'shape {tuple(x.shape)}')


def normalized_distances(e):
    """Pairwise Euclidean distances ``(B, B)`` divided by their mean over pairs ``i ≠ j``."""
    squares = e.pow(2).sum(1)
    d = (squares[:, None] + squares[None] - 2 * e @ e.t()).clamp_min(1e-12).sqrt()
    d = d * (1 - torch.eye(len(e), device=e.device))
    mean = d.sum() / max(len(e) * (len(e) - 1), 1)
    return d / mean.clamp_min(1e-12)


def angles(e):
    """``(B, B, B)`` cosines of the angle at ``e_i`` between ``e_j`` and ``e_k``."""
    diff = F.normalize(e[None] - e[:, None], dim=2)
    return diff @ diff.transpose(1, 2)


def rkd_loss(student, teacher, w_distance=25.0, w_angle=50.0):
    """``w_distance · L_D + w_angle · L_A`` of two ``(B, C)`` embeddings (teacher detached)."""
    distance = F.smooth_l1_loss(normalized_distances(student), normalized_distances(teacher))
    angle = F.smooth_l1_loss(angles(student), angles(teacher))
    return w_distance * distance + w_angle * angle


@MODELS.register_module()
class RKDLoss(nn.Module):
    """Relational KD (Park et al. 2019): distance and angle relations of the batch."""

    def __init__(self, w_distance=25.0, w_angle=50.0):
        super().__init__()
        self.w_distance = w_distance
        self.w_angle = w_angle
        self.warned_small = False

    def warn_small_batch(self, batch):
        """Warn once when the batch has under 3 images: no relation there can differ."""
        if batch < 3 and not self.warned_small:
            self.warned_small = True
            warnings.warn(
                f'{NAME}: a batch of {batch} gives a loss of 0 with zero gradient: RKD compares '
                'distances and angles between the images of a batch, and below 3 images they are '
                'the same for any embeddings (one distance, normalised to 1; no angle). Train '
                'with 3 or more images per batch.')

    def forward(self, student, teacher, **ctx):
        student = as_embeddings(student, 'student')
        teacher = as_embeddings(teacher.detach(), 'teacher')
        _check_batch(student, teacher, NAME)
        self.warn_small_batch(len(student))
        return rkd_loss(student, teacher, self.w_distance, self.w_angle)
