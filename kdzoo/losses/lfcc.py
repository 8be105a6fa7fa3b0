"""LFCC: Low-Frequency Components-based Contrastive Knowledge Distillation.

Paper: arXiv 2405.18524. No official code exists: this is a **reconstruction from the abstract**;
``docs/losses.md`` lists the choices. Parameter-free.

For one pair of intermediate maps ``(B, C, H, W)`` (pooled to the smaller grid; the distiller
pairs stages), for every ``g`` in ``grids`` a low-pass filter ``φ_g`` gives one vector per image:

- ``filter='avg'``: adaptive average pooling to ``g × g``;
- ``filter='fft'``: the lowest ``g × g`` coefficients of the 2-D FFT, normalised by the map size
  (``norm='forward'``: the DC term is the map mean, so ``g = 1`` equals ``'avg'``), frequencies
  ``-(g-1)//2 .. g//2`` per axis, real and imaginary parts kept (the phase carries the layout).

With ``s_b = φ_g(student_b)``, ``t_b = φ_g(teacher_b)`` L2-normalised:
``L_g = -1/B Σ_b log softmax_j(s_b · t_j / tau)_b`` (InfoNCE, diagonal positives); with
``symmetric=True`` the teacher→student direction is added. ``LFCC = mean_g L_g``.

Defaults ``tau=0.1, grids=(1, 2, 4), filter='avg', symmetric=False, channel_pool=False``.
Unequal widths need a connector, or ``channel_pool=True`` (average channels down to the smaller
width, parameter-free). ``gather_distributed=True`` takes the negatives from every rank, with
gradient. A batch of 1 (over all ranks) has no negatives: the loss is exactly 0, with a warning.
"""
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import (
    check_grids,
    check_temperature,
    dense_pair,
    gather_keys,
    info_nce,
)
from kdzoo.registry import MODELS

NAME = 'LFCCLoss'
FILTERS = ('avg', 'fft')


def low_frequencies(n, m):
    """Indices of the ``min(m, n)`` lowest FFT frequencies ``-(m-1)//2 .. m//2`` of ``n`` bins."""
    m = min(m, n)
    return torch.arange(-((m - 1) // 2), m // 2 + 1) % n


def low_pass(x, grid, filter='avg'):
    """``(B, C, H, W)`` -> ``(B, D)``: the ``grid × grid`` low-frequency part of every image."""
    if filter == 'avg':
        return F.adaptive_avg_pool2d(x, grid).flatten(1)
    spectrum = torch.fft.fft2(x, norm='forward')
    rows = low_frequencies(x.shape[-2], grid).to(x.device)
    cols = low_frequencies(x.shape[-1], grid).to(x.device)
    spectrum = spectrum[..., rows, :][..., cols]
    return torch.cat([spectrum.real, spectrum.imag], 1).flatten(1)


def pool_channels(x, width):
    """Average the channels of ``(B, C, H, W)`` down to ``width`` (adaptive 1-D average pooling)."""
    if x.shape[1] == width:
        return x
    b, _, h, w = x.shape
    pooled = F.adaptive_avg_pool1d(x.float().flatten(2).transpose(1, 2), width)
    return pooled.transpose(1, 2).reshape(b, width, h, w)


def match_widths(student, teacher, channel_pool):
    """Equal widths by channel pooling, or a ValueError offering a connector or ``channel_pool``."""
    if student.dim() != 4 or teacher.dim() != 4 or student.shape[1] == teacher.shape[1]:
        return student, teacher
    if channel_pool:
        width = min(student.shape[1], teacher.shape[1])
        return pool_channels(student, width), pool_channels(teacher, width)
    raise ValueError(
        f'{NAME}: channel widths differ: student {tuple(student.shape)} has {student.shape[1]} '
        f'channels, teacher {tuple(teacher.shape)} has {teacher.shape[1]}. Add a connector to the '
        f"item (connectors=dict(proj=dict(type='Projector', in_channels={student.shape[1]}, "
        f"out_channels={teacher.shape[1]})), connector='proj') or set channel_pool=True "
        f'(parameter-free: average channels down to {min(student.shape[1], teacher.shape[1])})')


def lfcc_loss(student, teacher, tau=0.1, grids=(1, 2, 4), filter='avg', symmetric=False,
              channel_pool=False, gather_distributed=False):
    """LFCC between one pair of dense maps; see the module doc."""
    student, teacher = match_widths(student, teacher, channel_pool)
    student, teacher = dense_pair(student, teacher, NAME)
    losses = []
    for grid in grids:
        s, t = low_pass(student, grid, filter), low_pass(teacher, grid, filter)
        keys, offset = gather_keys(t) if gather_distributed else (t, 0)
        loss = info_nce(s, keys, tau, offset=offset)
        if symmetric:
            keys, offset = gather_keys(s) if gather_distributed else (s, 0)
            loss = loss + info_nce(t, keys, tau, offset=offset)
        losses.append(loss)
    return torch.stack(losses).mean()


@MODELS.register_module()
class LFCCLoss(nn.Module):
    """Low-frequency contrastive distillation (reconstruction, arXiv 2405.18524).

    Args:
        tau: InfoNCE temperature.
        grids: filter sizes: ``g × g`` pooled grid (``'avg'``) or lowest FFT coefficients
            (``'fft'``).
        filter: ``'avg'`` or ``'fft'``.
        symmetric: add the teacher→student direction.
        channel_pool: average channels to the smaller width instead of raising on unequal widths.
        gather_distributed: take negatives from every rank (with gradient).
    """

    def __init__(self, tau=0.1, grids=(1, 2, 4), filter='avg', symmetric=False,
                 channel_pool=False, gather_distributed=False):
        super().__init__()
        if filter not in FILTERS:
            raise ValueError(f'{NAME}: filter must be one of {FILTERS}, got {filter!r}')
        self.tau = check_temperature(tau, NAME, 'the InfoNCE temperature', 0.1)
        self.grids = check_grids(grids, NAME)
        self.filter = filter
        self.symmetric = symmetric
        self.channel_pool = channel_pool
        self.gather_distributed = gather_distributed
        self.warned_single = False

    def warn_single_image(self, batch):
        """Warn once when the (gathered) batch holds one image: InfoNCE then has no negatives."""
        if self.gather_distributed and dist.is_available() and dist.is_initialized():
            batch *= dist.get_world_size()
        if batch == 1 and not self.warned_single:
            self.warned_single = True
            warnings.warn(
                f'{NAME}: a batch of 1 gives a loss of exactly 0 with zero gradient: LFCC '
                'contrasts each image with the other images of the batch (InfoNCE), and there '
                'are none. Train with 2 or more images per batch (gather_distributed=True counts '
                'the images of every rank).')

    def forward(self, student, teacher, **ctx):
        self.warn_single_image(student.shape[0])
        return lfcc_loss(student, teacher, self.tau, self.grids, self.filter, self.symmetric,
                         self.channel_pool, self.gather_distributed)
