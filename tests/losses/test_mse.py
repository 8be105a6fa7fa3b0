import pytest
import torch
from loss_checks import (
    check_builds,
    check_dense_errors,
    check_gradient_and_precision,
    check_pools_larger_map,
    randn,
)

from kdzoo.losses.mse import MSELoss


def test_matches_elementwise_formula():
    s, t = randn(2, 3, 4, 5, seed=1), randn(2, 3, 4, 5, seed=2)
    pairs = zip(s.flatten().tolist(), t.flatten().tolist())
    expected = sum((a - b) ** 2 for a, b in pairs) / s.numel()
    torch.testing.assert_close(MSELoss()(s, t).item(), expected, rtol=1e-5, atol=1e-6)


def test_heterogeneous_grids_pool_the_larger_map():
    check_pools_larger_map(MSELoss(), lambda s, t: ((s - t) ** 2).mean(), rtol=1.3e-6, atol=1e-5)


def test_zero_when_equal():
    t = randn(2, 3, 4, 4, seed=1)
    assert MSELoss()(t, t) == 0


@pytest.mark.parametrize('batch', [1, 3])
def test_contract_gradient_and_low_precision(batch):
    check_gradient_and_precision(MSELoss(), randn(batch, 3, 4, 4, seed=1),
                                 randn(batch, 3, 4, 4, seed=2))


def test_builds_from_registry():
    check_builds('MSELoss')


def test_bad_inputs():
    check_dense_errors(MSELoss(), 'MSELoss')
