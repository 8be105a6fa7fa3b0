import math

import pytest
import torch
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
