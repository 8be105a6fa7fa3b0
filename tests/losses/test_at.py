import pytest
import torch
from loss_checks import (
    check_builds,
    check_dense_errors,
    check_gradient_and_precision,
    check_pools_larger_map,
    randn,
)

from kdzoo.losses.at import ATLoss


def at_by_loop(s, t, p=2):
    """Per image: attention a_j = mean_c |x_cj|^p over its L2 norm; mean squared difference."""
    total, count = 0.0, 0
    for b in range(s.shape[0]):
        maps = []
        for x in (s[b], t[b]):
            a = [float(x[:, i, j].abs().pow(p).mean()) for i in range(x.shape[1])
                 for j in range(x.shape[2])]
            norm = sum(v * v for v in a) ** 0.5
            maps.append([v / norm for v in a])
        total += sum((u - v) ** 2 for u, v in zip(*maps))
        count += len(maps[0])
    return total / count


@pytest.mark.parametrize('p', [2, 1])
def test_matches_loop_formula_with_different_widths(p):
    s, t = randn(2, 3, 4, 5, seed=1), randn(2, 8, 4, 5, seed=2)
    torch.testing.assert_close(ATLoss(p=p)(s, t).item(), at_by_loop(s, t, p), rtol=1e-5, atol=1e-8)


def test_heterogeneous_grids_pool_the_larger_map():
    check_pools_larger_map(ATLoss(), at_by_loop, teacher_channels=6, rtol=1e-5, atol=1e-8)


def test_zero_when_equal_up_to_scale():
    t = randn(2, 3, 4, 4, seed=1)
    assert ATLoss()(t, t) == 0
    assert ATLoss()(3 * t, t) < 1e-12


@pytest.mark.parametrize('batch', [1, 3])
def test_contract_gradient_and_low_precision(batch):
    check_gradient_and_precision(ATLoss(), randn(batch, 3, 4, 4, seed=1),
                                 randn(batch, 5, 4, 4, seed=2))


def test_all_zero_maps_are_finite():
    s = torch.zeros(2, 3, 4, 4, requires_grad=True)
    loss = ATLoss()(s, torch.zeros(2, 3, 4, 4))
    loss.backward()
    assert loss == 0 and torch.isfinite(s.grad).all()


def test_builds_from_registry():
    check_builds('ATLoss')
    assert ATLoss().p == 2


def test_bad_inputs():
    check_dense_errors(ATLoss(), 'ATLoss', equal_widths=False)
