"""Layout conversions: the one place where tensor layouts are converted.

Canonical layouts:
- ``'nchw'``   dense map ``(B, C, H, W)`` (CNN stages, FPN levels, segmentation logits)
- ``'nhwc'``   channels-last map ``(B, H, W, C)`` (timm Swin stages)
- ``'tokens'`` ``(B, N, C)`` with ``num_prefix_tokens`` leading CLS/distillation tokens (ViT, Mixer)
- ``'vector'`` ``(B, C)``: pooled features or logits

Losses and adapters call :func:`to_map` and :func:`align`; nothing else converts layouts.
Spatial mismatch is resolved by pooling (or bilinear resize, for logit maps) to the smaller grid,
never by cropping.
"""
import math

import torch.nn.functional as F

LAYOUTS = ('nchw', 'nhwc', 'tokens')


def tokens_to_map(x, num_prefix_tokens=0, grid=None):
    """``(B, P + h*w, C)`` tokens -> ``(B, C, h, w)``, dropping the ``P`` prefix tokens.

    ``grid=(h, w)`` is the patch grid the model reports; without it the grid must be square.
    """
    if x.dim() != 3:
        raise ValueError(f'tokens_to_map: expected (B, N, C) tokens, got shape {tuple(x.shape)}')
    x = x[:, num_prefix_tokens:]
    n = x.shape[1]
    if grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(
                f'tokens_to_map: {n} tokens (after dropping {num_prefix_tokens} prefix tokens) '
                'are not a square grid; pass grid=(h, w) or the right num_prefix_tokens')
        grid = (side, side)
    h, w = grid
    if h * w != n:
        raise ValueError(f'tokens_to_map: grid {tuple(grid)} does not hold {n} tokens')
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


def nhwc_to_nchw(x):
    """``(B, H, W, C)`` -> ``(B, C, H, W)``."""
    if x.dim() != 4:
        raise ValueError(f'nhwc_to_nchw: expected a 4-D (B, H, W, C) map, got {tuple(x.shape)}')
    return x.permute(0, 3, 1, 2)


def to_map(x, layout='nchw', num_prefix_tokens=0, grid=None):
    """Convert ``x`` in ``layout`` (one of :data:`LAYOUTS`) to a dense ``(B, C, H, W)`` map."""
    if layout == 'nchw':
        if x.dim() != 4:
            raise ValueError(f"to_map: layout 'nchw' needs a 4-D tensor, got {tuple(x.shape)}")
        return x
    if layout == 'nhwc':
        return nhwc_to_nchw(x)
    if layout == 'tokens':
        return tokens_to_map(x, num_prefix_tokens, grid)
    raise ValueError(f'to_map: unknown layout {layout!r}; choose one of {LAYOUTS}')


def resize(x, size, mode='pool'):
    """Bring a ``(B, C, H, W)`` map to spatial ``size`` by adaptive average pooling
    (``mode='pool'``, features; upsampling repeats) or bilinear interpolation (``mode='bilinear'``,
    logit maps)."""
    size = tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == 'pool':
        if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
            return F.adaptive_avg_pool2d(x, size)
        return F.interpolate(x, size=size, mode='nearest')
    if mode == 'bilinear':
        return F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    raise ValueError(f"resize: unknown mode {mode!r}; choose 'pool' or 'bilinear'")


def align(student, teacher, mode='pool'):
    """Bring two dense maps to their common (smaller) grid: ``(min(Hs, Ht), min(Ws, Wt))``.

    Returns ``(student, teacher)``; a map already on that grid is returned unchanged.
    """
    for name, t in (('student', student), ('teacher', teacher)):
        if t.dim() != 4:
            raise ValueError(f'align: {name} must be a (B, C, H, W) map, got {tuple(t.shape)}')
    size = (min(student.shape[-2], teacher.shape[-2]), min(student.shape[-1], teacher.shape[-1]))
    return resize(student, size, mode), resize(teacher, size, mode)


def as_samples(x):
    """Logits ``(B, K)`` or dense logit maps ``(B, K, H, W)`` -> samples ``(N, K)``.

    Every location of a dense map is one sample (``N = B*H*W``), ordered image by image.
    """
    if x.dim() == 2:
        return x
    if x.dim() == 4:
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    raise ValueError('as_samples: expected (B, K) logits or (B, K, H, W) maps, '
                     f'got {tuple(x.shape)}')
