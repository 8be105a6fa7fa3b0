import math
import statistics

import torch
from loss_checks import as_rows, check_contract, check_student_only_gradient, randn

from kdzoo.losses.dist import DISTLoss


def reference_dist(student, teacher, beta, gamma, tau):
    """statistics.correlation over rows (inter) and columns (intra) of the softmax, times tau²."""
    y_s = [[math.exp(v / tau) for v in row] for row in student.tolist()]
    y_t = [[math.exp(v / tau) for v in row] for row in teacher.tolist()]
    y_s = [[v / sum(row) for v in row] for row in y_s]
    y_t = [[v / sum(row) for v in row] for row in y_t]
    inter = 1 - statistics.fmean(statistics.correlation(a, b) for a, b in zip(y_s, y_t))
    intra = 1 - statistics.fmean(statistics.correlation(a, b) for a, b in zip(zip(*y_s), zip(*y_t)))
    return tau ** 2 * (beta * inter + gamma * intra)


def test_matches_statistics_formula():
    s, t = randn(6, 5, seed=1), randn(6, 5, seed=2, scale=3)
    for beta, gamma, tau in ((1.0, 1.0, 1.0), (2.0, 0.5, 4.0)):
        got = DISTLoss(beta, gamma, tau)(s, t).item()
        assert math.isclose(got, reference_dist(s, t, beta, gamma, tau), rel_tol=1e-5)


def test_tau_squared_factor_of_official_code():
    s, t = randn(5, 4, seed=1), randn(5, 4, seed=2)
    with_tau = DISTLoss(tau=4.0)(s, t)
    unscaled = DISTLoss(tau=1.0)(s / 4, t / 4)  # same softmaxes, no factor
    torch.testing.assert_close(with_tau, 16 * unscaled)


def test_minimum_when_equal_and_edge_cases():
    s = randn(3, 7)
    assert abs(DISTLoss()(s, s.clone()).item()) < 1e-5
    assert DISTLoss()(s, randn(3, 7, seed=4)).item() > 1e-3
    # batch of 1: each column is one value, its correlation is 0 (official code), intra term = 1
    one = randn(1, 7)
    torch.testing.assert_close(DISTLoss()(one, one.clone()), torch.tensor(1.0), atol=1e-5, rtol=0)
    flat = torch.zeros(2, 7)  # all-equal logits: uniform rows, correlation 0, finite
    assert torch.isfinite(DISTLoss()(flat, randn(2, 7)))
    check_student_only_gradient(DISTLoss(), randn(2, 2), randn(2, 2, seed=1))  # 2 classes


def test_contract_and_dense_maps():
    check_contract('DISTLoss', randn(4, 5), randn(4, 5, seed=1))
    maps_s, maps_t = randn(2, 5, 3, 3, seed=2), randn(2, 5, 3, 3, seed=3)
    expected = reference_dist(as_rows(maps_s), as_rows(maps_t), 1.0, 1.0, 1.0)
    assert math.isclose(DISTLoss()(maps_s, maps_t).item(), expected, rel_tol=1e-5)
