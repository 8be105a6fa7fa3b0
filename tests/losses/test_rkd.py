import itertools

import pytest
import torch
from loss_checks import check_builds, check_gradient_and_precision, randn

from kdzoo.losses.rkd import RKDLoss


def smooth_l1(a, b):
    d = abs(a - b)
    return 0.5 * d * d if d < 1 else d - 0.5


def rkd_by_loop(s, t, w_distance=25.0, w_angle=50.0):
    """Park et al.'s distance and angle terms, pair by pair and triplet by triplet (float64)."""
    s, t = s.double(), t.double()
    n = len(s)

    def distances(e):
        d = {(i, j): float((e[i] - e[j]).norm()) for i, j in itertools.product(range(n), repeat=2)}
        mean = sum(v for (i, j), v in d.items() if i != j) / (n * (n - 1))
        return {k: v / mean for k, v in d.items()}

    def cosine(e, i, j, k):
        u, v = e[j] - e[i], e[k] - e[i]
        if j == i or k == i:
            return 0.0
        return float(u @ v / (u.norm() * v.norm()))

    ds, dt = distances(s), distances(t)
    distance = sum(smooth_l1(ds[k], dt[k]) for k in ds) / len(ds)
    triplets = list(itertools.product(range(n), repeat=3))
    angle = sum(smooth_l1(cosine(s, *ijk), cosine(t, *ijk)) for ijk in triplets) / len(triplets)
    return w_distance * distance + w_angle * angle


@pytest.mark.parametrize('kwargs', [dict(), dict(w_distance=1.0, w_angle=0.0),
                                    dict(w_distance=0.0, w_angle=1.0)])
def test_matches_loop_formula_with_different_widths(kwargs):
    s, t = randn(5, 3, seed=1), 4 * randn(5, 7, seed=2)
    torch.testing.assert_close(RKDLoss(**kwargs)(s, t).item(), rkd_by_loop(s, t, **kwargs),
                               rtol=1e-5, atol=1e-6)


def test_dense_maps_are_globally_pooled():
    s, t = randn(4, 3, 14, 14, seed=1), randn(4, 6, 7, 7, seed=2)
    expected = rkd_by_loop(s.mean((2, 3)), t.mean((2, 3)))
    torch.testing.assert_close(RKDLoss()(s, t).item(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(RKDLoss()(s, t.mean((2, 3))).item(), expected, rtol=1e-5, atol=1e-6)


def test_zero_for_scaled_and_shifted_copy():
    t = randn(6, 4, seed=1)
    assert RKDLoss()(3 * t + 1, t) < 1e-5  # relations are scale and shift free


@pytest.mark.parametrize('shapes', [((5, 8), (5, 3)), ((4, 6, 3, 3), (4, 2, 5, 5))])
def test_contract_gradient_and_low_precision(shapes):
    check_gradient_and_precision(RKDLoss(), randn(*shapes[0], seed=1), randn(*shapes[1], seed=2))


def test_batch_of_one_and_duplicates_are_finite():
    s = randn(1, 4, seed=1).requires_grad_()
    loss = RKDLoss()(s, randn(1, 4, seed=2))
    loss.backward()
    assert loss == 0 and torch.isfinite(s.grad).all()
    s = torch.ones(3, 4, requires_grad=True)
    loss = RKDLoss()(s, randn(3, 4, seed=2))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_builds_from_registry():
    check_builds('RKDLoss')
    assert (RKDLoss().w_distance, RKDLoss().w_angle) == (25.0, 50.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'RKDLoss: teacher must be vectors .* \(2, 16, 3\)'):
        RKDLoss()(randn(2, 3), randn(2, 16, 3))
    with pytest.raises(ValueError, match=r'RKDLoss: student and teacher batch sizes differ.*'
                                         r'\(2, 3\).*\(3, 3\)'):
        RKDLoss()(randn(2, 3), randn(3, 3))
