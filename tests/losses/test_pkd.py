import torch
from loss_checks import (
    check_builds,
    check_dense_errors,
    check_gradient_and_precision,
    check_pools_larger_map,
    randn,
)

from kdzoo.losses.pkd import PKDLoss


def pearson_form(s, t):
    """PKD through the Pearson correlation r_c of every channel over (B, H, W):
    with unbiased standardisation Σ ŝ² = n - 1, so
    mean (ŝ - t̂)² / 2 = mean_c (n - 1) / n (1 - r_c)."""
    s, t = s.double(), t.double()
    total = 0.0
    for c in range(s.shape[1]):
        x, y = s[:, c].flatten(), t[:, c].flatten()
        x, y = x - x.mean(), y - y.mean()
        r = float(x @ y / (x.norm() * y.norm()))
        total += (len(x) - 1) / len(x) * (1 - r)
    return total / s.shape[1]


def test_matches_pearson_formula():
    s, t = randn(3, 4, 5, 5, seed=1), 2 + 5 * randn(3, 4, 5, 5, seed=2)
    torch.testing.assert_close(PKDLoss()(s, t).item(), pearson_form(s, t), rtol=1e-4, atol=1e-6)


def test_heterogeneous_grids_pool_the_larger_map():
    check_pools_larger_map(PKDLoss(), pearson_form, rtol=1e-4, atol=1e-6)


def test_zero_for_affine_copy():
    t = randn(2, 3, 4, 4, seed=1)
    assert PKDLoss()(t, t) == 0
    assert PKDLoss()(4 * t - 2, t) < 1e-6


def test_contract_gradient_and_low_precision():
    check_gradient_and_precision(PKDLoss(), randn(2, 3, 4, 4, seed=1), randn(2, 3, 4, 4, seed=2))


def test_single_value_and_constant_channels_are_finite():
    s = randn(1, 3, 1, 1, seed=1).requires_grad_()
    loss = PKDLoss()(s, randn(1, 3, 1, 1, seed=2))
    loss.backward()
    assert loss == 0 and torch.isfinite(s.grad).all()
    loss = PKDLoss()(torch.ones(2, 3, 4, 4), randn(2, 3, 4, 4, seed=2))
    torch.testing.assert_close(loss.item(), 0.5 * 31 / 32, rtol=1e-4, atol=1e-6)  # ŝ = 0


def test_builds_from_registry():
    check_builds('PKDLoss')


def test_bad_inputs():
    check_dense_errors(PKDLoss(), 'PKDLoss')
