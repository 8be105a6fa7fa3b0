import math

import pytest
import torch
from loss_checks import (
    check_builds,
    check_dense_errors,
    check_gradient_and_precision,
    check_pools_larger_map,
    randn,
)

from kdzoo.losses.cwd import CWDLoss


def cwd_by_loop(s, t, tau=1.0):
    """tau² / (B C) Σ_{b,c} Σ_j p^t_j (log p^t_j - log p^s_j), spatial softmax per channel."""
    total = 0.0
    for b in range(s.shape[0]):
        for c in range(s.shape[1]):
            zs = [v / tau for v in s[b, c].flatten().tolist()]
            zt = [v / tau for v in t[b, c].flatten().tolist()]
            log_zs = math.log(sum(math.exp(v) for v in zs))
            log_zt = math.log(sum(math.exp(v) for v in zt))
            total += sum(math.exp(u - log_zt) * ((u - log_zt) - (v - log_zs))
                         for u, v in zip(zt, zs))
    return tau ** 2 * total / (s.shape[0] * s.shape[1])


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_matches_loop_formula(tau):
    s, t = randn(2, 3, 4, 5, seed=1), 3 * randn(2, 3, 4, 5, seed=2)
    torch.testing.assert_close(CWDLoss(tau)(s, t).item(), cwd_by_loop(s, t, tau), rtol=1e-5,
                               atol=1e-6)


def test_heterogeneous_grids_pool_the_larger_map():
    check_pools_larger_map(CWDLoss(), cwd_by_loop, rtol=1e-5, atol=1e-6)


def test_zero_when_equal_up_to_shift():
    t = randn(2, 3, 4, 4, seed=1)
    assert CWDLoss()(t, t) == 0
    assert CWDLoss()(t + 5, t).abs() < 1e-6


@pytest.mark.parametrize('batch', [1, 3])
def test_contract_gradient_and_low_precision(batch):
    check_gradient_and_precision(CWDLoss(), randn(batch, 3, 4, 4, seed=1),
                                 randn(batch, 3, 4, 4, seed=2))


def test_saturated_and_equal_maps_are_finite():
    s = torch.zeros(2, 2, 3, 3, requires_grad=True)
    t = torch.zeros(2, 2, 3, 3)
    t[:, :, 0, 0] = 1e4
    loss = CWDLoss()(s, t)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    torch.testing.assert_close(loss.item(), math.log(9), rtol=1e-5, atol=1e-6)


def test_builds_from_registry():
    check_builds('CWDLoss')
    assert CWDLoss().tau == 1.0


def test_bad_inputs():
    check_dense_errors(CWDLoss(), 'CWDLoss')
