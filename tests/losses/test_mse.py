import pytest
import torch

from kdzoo.losses.mse import MSELoss
from logit_loss_checks import check_builds, check_low_precision, check_student_only_gradient, randn


def test_matches_elementwise_formula():
    s, t = randn(2, 3, 4, 5, seed=1), randn(2, 3, 4, 5, seed=2)
    pairs = zip(s.flatten().tolist(), t.flatten().tolist())
    expected = sum((a - b) ** 2 for a, b in pairs) / s.numel()
    torch.testing.assert_close(MSELoss()(s, t).item(), expected, rtol=1e-5, atol=1e-6)


def test_heterogeneous_grids_pool_the_larger_map():
    s, t = randn(2, 3, 14, 14, seed=1), randn(2, 3, 7, 7, seed=2)
    pooled = s.reshape(2, 3, 7, 2, 7, 2).mean((3, 5))
    torch.testing.assert_close(MSELoss()(s, t), ((pooled - t) ** 2).mean())


def test_zero_when_equal():
    t = randn(2, 3, 4, 4, seed=1)
    assert MSELoss()(t, t) == 0


@pytest.mark.parametrize('batch', [1, 3])
def test_contract_gradient_and_low_precision(batch):
    s, t = randn(batch, 3, 4, 4, seed=1), randn(batch, 3, 4, 4, seed=2)
    check_student_only_gradient(MSELoss(), s, t)
    check_low_precision(MSELoss(), s, t)


def test_builds_from_registry():
    check_builds('MSELoss')


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'MSELoss: channel widths differ.*\(2, 3, 4, 4\).*'
                                         r'\(2, 5, 4, 4\).*connector'):
        MSELoss()(randn(2, 3, 4, 4), randn(2, 5, 4, 4))
    with pytest.raises(ValueError, match=r'MSELoss: student must be a dense map.*\(2, 3\)'):
        MSELoss()(randn(2, 3), randn(2, 3, 4, 4))
