import math

import pytest
import torch
import torch.nn.functional as F
from loss_checks import (
    assert_matches_reference,
    check_builds,
    check_dense_errors,
    check_gradient_and_precision,
    check_vit_student_vs_cnn_teacher,
    randn,
)

from kdzoo.losses.lfcc import LFCCLoss


def block_means(x, g):
    """``g × g`` average pooling of a map whose sides ``g`` divides, by reshaping."""
    b, c, h, w = x.shape
    return x.reshape(b, c, g, h // g, g, w // g).mean((3, 5)).flatten(1)


def dft_low(x, m):
    """Lowest ``m × m`` DFT coefficients (frequencies -(m-1)//2 .. m//2): explicit sum / (H W)."""
    b, c, h, w = x.shape
    freqs = range(-((m - 1) // 2), m // 2 + 1)
    coeffs = []
    for u in freqs:
        for v in freqs:
            phase = torch.tensor([[2 * math.pi * (u * i / h + v * j / w) for j in range(w)]
                                  for i in range(h)], dtype=torch.float64)
            coeffs.append(torch.complex(torch.cos(phase), -torch.sin(phase)))
    basis = torch.stack(coeffs)  # (m*m, H, W)
    spec = torch.einsum('bchw,khw->bck', x.to(torch.complex128), basis) / (h * w)
    return torch.cat([spec.real, spec.imag], 1).flatten(1)


def nce_rows(query, keys, tau):
    """Mean over rows of -log softmax(cos(q_i, k_j) / tau)_i, row by row."""
    total = 0.0
    for i in range(len(query)):
        logits = torch.stack([torch.cosine_similarity(query[i], k, dim=0) for k in keys]) / tau
        total = total + torch.logsumexp(logits, 0) - logits[i]
    return total / len(query)


def lfcc_by_loop(s, t, tau=0.1, grids=(1, 2, 4), filter='avg', symmetric=False):
    s, t = s.double(), t.double()
    lowpass = block_means if filter == 'avg' else dft_low
    terms = []
    for g in grids:
        zs, zt = lowpass(s, g), lowpass(t, g)
        terms.append(nce_rows(zs, zt, tau) + (nce_rows(zt, zs, tau) if symmetric else 0))
    return sum(terms) / len(terms)


def lfcc_per_grid(s, t, tau=0.1, grids=(1, 2, 4), filter='avg', symmetric=False):
    """kdzoo's LFCC before all grids shared one pooling product and one similarity product
    (float32): per grid, one adaptive average pooling (or FFT) per side, ``F.normalize``d vectors,
    InfoNCE in each direction; the mean over grids."""
    def low_pass(x, g):
        if filter == 'avg':
            return F.adaptive_avg_pool2d(x, g).flatten(1)
        rows, cols = (torch.arange(-((m - 1) // 2), m // 2 + 1) % n
                      for n, m in ((n, min(g, n)) for n in x.shape[2:]))
        spectrum = torch.fft.fft2(x, norm='forward')[..., rows, :][..., cols]
        return torch.cat([spectrum.real, spectrum.imag], 1).flatten(1)

    def nce(query, key):
        logits = F.normalize(query, dim=-1) @ F.normalize(key, dim=-1).T / tau
        return F.cross_entropy(logits, torch.arange(len(query)))

    grid = tuple(min(a, b) for a, b in zip(s.shape[-2:], t.shape[-2:]))
    s, t = (x if x.shape[-2:] == grid else F.adaptive_avg_pool2d(x, grid) for x in (s, t))
    terms = []
    for g in grids:
        zs, zt = low_pass(s, g), low_pass(t, g)
        terms.append(nce(zs, zt) + (nce(zt, zs) if symmetric else 0))
    return torch.stack(terms).mean()


@pytest.mark.parametrize('shape', [(64, 32, 4, 4), (64, 64, 2, 2), (16, 8, 8, 8), (8, 4, 1, 1),
                                   (8, 4, 7, 7), (8, 4, 14, 14), (5, 3, 8, 5), (4, 3, 3, 3)])
@pytest.mark.parametrize('kwargs', [dict(), dict(filter='fft'), dict(symmetric=True),
                                    dict(grids=(2, 3), filter='fft', symmetric=True),
                                    dict(grids=(1, 3, 6)), dict(tau=0.5, grids=(4, 1, 4))])
@pytest.mark.parametrize('teacher_grid', [None, 'half', 'double'])
def test_equals_the_per_grid_formula(shape, kwargs, teacher_grid):
    """All grids at once (grids that only repeat a map's positions computed once; the pooling to
    the common grid folded into the pooling) give the per-grid formula's value and gradient to
    1e-6."""
    size = {None: shape[2:], 'half': [max(1, n // 2) for n in shape[2:]],
            'double': [2 * n for n in shape[2:]]}[teacher_grid]
    s, t = randn(*shape, seed=1), randn(*shape[:2], *size, seed=2)
    got_s, ref_s = s.clone().requires_grad_(), s.clone().requires_grad_()
    got, expected = LFCCLoss(**kwargs)(got_s, t), lfcc_per_grid(ref_s, t, **kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    got.backward()
    expected.backward()
    torch.testing.assert_close(got_s.grad, ref_s.grad, rtol=1e-6, atol=1e-6)


def test_a_grid_repeating_the_map_equals_the_map():
    """On a 2x2 map, 4x4 pooling repeats every position 4 times: the same cosines as 2x2."""
    s, t = randn(6, 3, 2, 2, seed=1), randn(6, 3, 2, 2, seed=2)
    torch.testing.assert_close(lfcc_per_grid(s, t, grids=(4,)), lfcc_per_grid(s, t, grids=(2,)))
    torch.testing.assert_close(LFCCLoss(grids=(4,))(s, t), lfcc_per_grid(s, t, grids=(4,)))


def test_zero_student_map_has_a_finite_gradient():
    s = torch.zeros(4, 3, 4, 4, requires_grad=True)
    LFCCLoss()(s, randn(4, 3, 4, 4, seed=2)).backward()
    assert torch.isfinite(s.grad).all()


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(tau=0.5, grids=(1, 4), symmetric=True),
    dict(filter='fft'),
    dict(filter='fft', grids=(2, 3), symmetric=True),
])
def test_matches_loop_formula(kwargs):
    s, t = randn(4, 3, 8, 8, seed=1), randn(4, 3, 8, 8, seed=2)
    assert_matches_reference(LFCCLoss(**kwargs)(s, t), lfcc_by_loop(s, t, **kwargs))


def test_fft_dc_term_equals_global_average():
    s, t = randn(4, 3, 8, 8, seed=1), randn(4, 3, 8, 8, seed=2)
    torch.testing.assert_close(LFCCLoss(grids=(1,), filter='fft')(s, t), LFCCLoss(grids=(1,))(s, t))


def test_heterogeneous_vit_tokens_vs_cnn_map():
    check_vit_student_vs_cnn_teacher(LFCCLoss(grids=(1, 7)),
                                     lambda s, t: lfcc_by_loop(s, t, grids=(1, 7)), 3, 4)


def test_channel_pool_averages_the_wider_side():
    s, t = randn(4, 6, 8, 8, seed=1), randn(4, 3, 8, 8, seed=2)
    loss = LFCCLoss(channel_pool=True)(s, t)
    assert_matches_reference(loss, lfcc_by_loop(s.reshape(4, 3, 2, 8, 8).mean(2), t))
    with pytest.raises(ValueError, match=r'LFCCLoss: channel widths differ.*\(4, 6, 8, 8\).*'
                                         r'\(4, 3, 8, 8\).*connector.*channel_pool=True'):
        LFCCLoss()(s, t)


@pytest.mark.parametrize('filter', ['avg', 'fft'])
def test_identical_inputs_beat_shuffled_teacher(filter):
    t = randn(6, 3, 8, 8, seed=5)
    loss = LFCCLoss(filter=filter)
    assert loss(t, t) < loss(t.roll(1, 0), t)
    assert loss(t, t) < loss(randn(6, 3, 8, 8, seed=6), t)


@pytest.mark.parametrize('kwargs', [dict(), dict(symmetric=True, filter='fft')])
def test_contract_gradient_and_low_precision(kwargs):
    check_gradient_and_precision(LFCCLoss(**kwargs), randn(3, 3, 8, 8, seed=1),
                                 randn(3, 3, 8, 8, seed=2))


def test_batch_of_one_is_zero_and_finite():
    s = randn(1, 3, 8, 8, seed=1).requires_grad_()
    loss = LFCCLoss(symmetric=True)(s, randn(1, 3, 8, 8, seed=2))
    assert loss == 0
    loss.backward()
    assert torch.isfinite(s.grad).all()


def test_all_equal_maps_are_finite():
    assert torch.isfinite(LFCCLoss()(torch.ones(2, 2, 4, 4), torch.ones(2, 2, 4, 4)))


def test_builds_from_registry():
    check_builds('LFCCLoss')
    loss = LFCCLoss()
    assert (loss.tau, loss.grids, loss.filter, loss.symmetric) == (0.1, (1, 2, 4), 'avg', False)
    assert (loss.channel_pool, loss.gather_distributed) == (False, False)


def test_bad_inputs():
    check_dense_errors(LFCCLoss(), 'LFCCLoss')
    with pytest.raises(ValueError, match=r"LFCCLoss: filter must be one of .*'dct'"):
        LFCCLoss(filter='dct')


@pytest.mark.parametrize('loss_type', ['LFCCLoss', 'MSDCRDLoss'])
def test_under_float16_autocast_the_value_and_gradient_are_float32s(loss_type):
    """Under AMP (autocast float16) the pooling and similarity products of un-normalised features
    overflowed float16 (NaN loss, or a finite loss with NaN gradients the loss scaler skips
    silently): they run in float32 whatever the autocast."""
    from kdzoo.registry import build
    loss = build(dict(type=loss_type))
    generator = torch.Generator().manual_seed(0)
    s = (20 * torch.randn(8, 512, 7, 7, generator=generator)).requires_grad_()
    t = 20 * torch.randn(8, 512, 7, 7, generator=generator)
    reference = loss(s, t)
    (expected,) = torch.autograd.grad(reference, s)
    with torch.autocast('cpu', dtype=torch.float16):
        value = loss(s, t)
    (grad,) = torch.autograd.grad(value, s)
    assert value.dtype == torch.float32 and torch.isfinite(grad).all()
    torch.testing.assert_close(value, reference)
    torch.testing.assert_close(grad, expected)
