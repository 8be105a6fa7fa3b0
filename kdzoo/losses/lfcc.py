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

Computed without recomputation (equal to the formula above to float rounding, tested): one
matrix product pools every grid (and the pooling to the common grid) per map, one FFT serves
every grid, a grid that only repeats the map's positions (``'avg'``: a multiple of the map's
side; ``'fft'``: more frequencies than the map has) is the same term as the grid of the map's own
size and is computed once, and the similarities of all grids come from one batched product
(:func:`~kdzoo.losses.functional.grouped_info_nce`).

Defaults ``tau=0.1, grids=(1, 2, 4), filter='avg', symmetric=False, channel_pool=False``.
Unequal widths need a connector, or ``channel_pool=True`` (average channels down to the smaller
width, parameter-free). ``gather_distributed=True`` takes the negatives from every rank, with
gradient. A batch of 1 (over all ranks) has no negatives: the loss is exactly 0, with a warning.
"""
import functools
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import (
    check_dense_pair,
    check_grids,
    check_temperature,
    dense_pair,
    gather_keys,
    grouped_info_nce,
)
from kdzoo.registry import MODELS

NAME = 'LFCCLoss'
FILTERS = ('avg', 'fft')


def low_frequencies(n, m):
    """Indices of the ``min(m, n)`` lowest FFT frequencies ``-(m-1)//2 .. m//2`` of ``n`` bins."""
    m = min(m, n)
    return torch.arange(-((m - 1) // 2), m // 2 + 1) % n


def bins(size, grid):
    """The ``grid`` bins ``[floor(i·size/grid), ceil((i+1)·size/grid))`` of adaptive average
    pooling over ``size`` positions (PyTorch's rule: bins overlap when ``grid`` does not divide
    ``size`` and repeat positions when ``grid > size``)."""
    return [(i * size // grid, -(-(i + 1) * size // grid)) for i in range(grid)]


def axis_cells(size, grid, filter):
    """The cells along one axis that give the same cosines as ``grid`` on ``size`` positions: a
    larger grid only repeats positions. ``'fft'`` keeps ``min(grid, size)`` frequencies;
    ``'avg'`` with ``grid`` a multiple of ``size`` repeats every position ``grid / size`` times,
    which scales every dot product and squared norm by that factor: the cosines of ``size``
    cells."""
    if filter == 'fft':
        return min(grid, size)
    return size if grid > size and grid % size == 0 else grid


def cell_grids(height, width, grids, filter):
    """The distinct ``(rows, cols)`` cell grids that ``grids`` give on a ``height × width`` map
    (:func:`axis_cells`), in order, and how many of ``grids`` give each."""
    counts = {}
    for g in grids:
        cells = (axis_cells(height, g, filter), axis_cells(width, g, filter))
        counts[cells] = counts.get(cells, 0) + 1
    return tuple(counts), tuple(counts.values())


@functools.lru_cache(maxsize=32)
def pooling_matrix(height, width, cells, device, grid=None):
    """``(J, height·width)``: row ``j`` averages the positions of cell ``j`` of the adaptive
    average pooling to every ``(rows, cols)`` of ``cells``, grid after grid, row-major
    (``J = Σ rows·cols``). With ``grid = (h, w)`` smaller than the map, the cells are those of
    the map first pooled to ``h × w`` (:func:`kdzoo.layout.align`'s pooling to the common grid),
    one matrix for both poolings. Built once per sizes and device."""
    with torch.inference_mode(False):  # usable by autograd even if first built in inference
        if grid is not None and tuple(grid) != (height, width):
            return pooling_matrix(*grid, cells, device) \
                @ pooling_matrix(height, width, (grid,), device)
        rows = []
        for grid_rows, grid_cols in cells:
            for top, bottom in bins(height, grid_rows):
                for left, right in bins(width, grid_cols):
                    cell = torch.zeros(height, width)
                    cell[top:bottom, left:right] = 1 / ((bottom - top) * (right - left))
                    rows.append(cell.flatten())
        return torch.stack(rows).to(device)


@functools.lru_cache(maxsize=32)
def frequency_indices(height, width, cells, device):
    """Flat indices into ``height·width`` of the lowest ``rows × cols`` FFT coefficients of every
    ``(rows, cols)`` of ``cells``, grid after grid, row-major; built once per size and device."""
    with torch.inference_mode(False):
        flat = [(low_frequencies(height, r)[:, None] * width + low_frequencies(width, c)).flatten()
                for r, c in cells]
        return torch.cat(flat).to(device)


def low_pass(x, cells, filter='avg', grid=None):
    """``(B, C, H, W)`` -> ``(J, B, D)``: the low-frequency part of every image for every
    ``(rows, cols)`` grid of ``cells``, one ``(B, D)`` slice per pooled cell (``'avg'``, ``D = C``)
    or FFT coefficient (``'fft'``, real and imaginary parts, ``D = 2C``), grid after grid; the
    vector of a grid is its slices' concatenation. ``'avg'`` pools the map as pooled to ``grid``
    first (the common grid of the pair; default its own).

    ``'avg'`` pools every grid with one matrix product (on CPU faster than one adaptive pooling
    per grid at every size measured, 4x4 to 56x56 maps); ``'fft'`` takes one FFT for all grids.
    """
    b, c, height, width = x.shape
    if filter == 'fft':
        spectrum = torch.fft.fft2(x, norm='forward').flatten(2)
        spectrum = spectrum[..., frequency_indices(height, width, cells, x.device)]
        return torch.cat([spectrum.real, spectrum.imag], 1).permute(2, 0, 1)
    weights = pooling_matrix(height, width, cells, x.device, grid)
    return (weights @ x.reshape(b * c, height * width).t()).view(-1, b, c)


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
    """LFCC between one pair of dense maps; see the module doc. Computed in float32 even under
    autocast: its pooling and similarity products take un-normalised features, which overflow
    float16."""
    with torch.autocast(student.device.type, enabled=False):
        return float32_lfcc(student, teacher, tau, grids, filter, symmetric, channel_pool,
                            gather_distributed)


def float32_lfcc(student, teacher, tau, grids, filter, symmetric, channel_pool,
                 gather_distributed):
    student, teacher = match_widths(student, teacher, channel_pool)
    if filter == 'fft':
        student, teacher = dense_pair(student, teacher, NAME)
    else:  # the pooling to the common grid is part of the pooling matrix
        check_dense_pair(student, teacher, NAME)
        student, teacher = student.float(), teacher.detach().float()
    grid = tuple(min(a, b) for a, b in zip(student.shape[-2:], teacher.shape[-2:]))
    cells, counts = cell_grids(*grid, grids, filter)
    sizes = tuple(r * c for r, c in cells)
    s, t = low_pass(student, cells, filter, grid), low_pass(teacher, cells, filter, grid)
    keys, offset = gather_keys(t, dim=1) if gather_distributed else (t, 0)
    loss = grouped_info_nce(s, keys, sizes, tau, offset, counts)
    if symmetric:
        keys, offset = gather_keys(s, dim=1) if gather_distributed else (s, 0)
        loss = loss + grouped_info_nce(t, keys, sizes, tau, offset, counts)
    return loss


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
