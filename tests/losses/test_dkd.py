import math

import pytest
import torch
from loss_checks import as_rows, check_contract, check_student_only_gradient, randn

from kdzoo.losses.dkd import DKDLoss


def softmax(values, tau):
    exps = [math.exp(v / tau) for v in values]
    return [e / sum(exps) for e in exps]


def kl(q, p):
    return sum(a * math.log(a / b) for a, b in zip(q, p) if a > 0)


def reference_dkd(student, teacher, target, alpha, beta, tau):
    """Probability space, per sample: binary target split and renormalised non-target classes."""
    total = 0.0
    for zs, zt, y in zip(student.tolist(), teacher.tolist(), target.tolist()):
        ps, pt = softmax(zs, tau), softmax(zt, tau)
        tckd = kl([pt[y], 1 - pt[y]], [ps[y], 1 - ps[y]])
        others_s = [p for c, p in enumerate(ps) if c != y]
        others_t = [p for c, p in enumerate(pt) if c != y]
        nckd = kl([p / sum(others_t) for p in others_t], [p / sum(others_s) for p in others_s])
        total += alpha * tckd + beta * nckd
    return tau ** 2 * total / len(target)


def test_matches_probability_formula():
    s, t, y = randn(6, 5, seed=1), randn(6, 5, seed=2, scale=3), torch.tensor([0, 1, 2, 3, 4, 0])
    for alpha, beta, tau in ((1.0, 8.0, 4.0), (0.5, 2.0, 1.0)):
        got = DKDLoss(alpha, beta, tau)(s, t, target=y).item()
        assert math.isclose(got, reference_dkd(s, t, y, alpha, beta, tau), rel_tol=1e-5)


def test_two_classes_nckd_is_zero_and_finite():
    """mdistiller's failure case: with 2 classes NCKD is a distribution over one class (0 here)."""
    s, t, y = randn(4, 2, seed=1), randn(4, 2, seed=2), torch.tensor([0, 1, 1, 0])
    with_nckd = DKDLoss(alpha=1.0, beta=8.0)(s, t, target=y)
    tckd_only = DKDLoss(alpha=1.0, beta=0.0)(s, t, target=y)
    torch.testing.assert_close(with_nckd, tckd_only)
    assert math.isclose(with_nckd.item(), reference_dkd(s, t, y, 1.0, 8.0, 4.0), rel_tol=1e-5)
    saturated = torch.tensor([[1e4, -1e4]])
    check_student_only_gradient(DKDLoss(), saturated, -saturated, target=torch.tensor([0]))


def test_equal_and_all_equal_logits():
    s, y = randn(3, 7), torch.tensor([1, 2, 3])
    assert DKDLoss()(s, s.clone(), target=y).item() < 1e-5
    assert DKDLoss()(s, randn(3, 7, seed=4), target=y).item() > 1e-3
    flat = torch.zeros(1, 7)
    assert DKDLoss()(flat, flat, target=torch.tensor([3])).item() == 0
    check_student_only_gradient(DKDLoss(), flat, randn(1, 7), target=torch.tensor([3]))


def test_dense_maps_with_label_maps_and_ignore_index():
    s, t = randn(2, 4, 3, 3, seed=1), randn(2, 4, 3, 3, seed=2)
    labels = torch.randint(0, 4, (2, 3, 3), generator=torch.Generator().manual_seed(0))
    labels[0, 0, 0] = 255
    flat_s, flat_t = as_rows(s), as_rows(t)
    keep = labels.reshape(-1) != 255
    expected = reference_dkd(flat_s[keep], flat_t[keep], labels.reshape(-1)[keep], 1.0, 8.0, 4.0)
    assert math.isclose(DKDLoss()(s, t, target=labels).item(), expected, rel_tol=1e-5)
    image_labels = torch.tensor([1, 3])  # (B,) labels are repeated per location
    expected = reference_dkd(flat_s, flat_t, image_labels.repeat_interleave(9), 1.0, 8.0, 4.0)
    assert math.isclose(DKDLoss()(s, t, target=image_labels).item(), expected, rel_tol=1e-5)


def test_contract():
    s, t, y = randn(4, 5), randn(4, 5, seed=1), torch.tensor([0, 1, 2, 3])
    check_contract('DKDLoss', s, t, target=y)
    with pytest.raises(ValueError, match='DKDLoss: needs ground-truth labels'):
        DKDLoss()(s, t)
    with pytest.raises(ValueError, match=r'DKDLoss: label 7 is outside \[0, 5\)'):
        DKDLoss()(s, t, target=torch.tensor([0, 1, 7, 3]))
    with pytest.raises(ValueError, match=r'DKDLoss: needs at least 2 classes.*\(4, 1\)'):
        DKDLoss()(randn(4, 1), randn(4, 1), target=torch.zeros(4, dtype=torch.long))


def test_full_resolution_label_maps_are_resized_nearest_to_the_compared_grid():
    """Adapters pass (B, H, W) label maps at image resolution: the loss takes every 4th pixel
    (nearest) for a 4x smaller logit grid, keeps 255 as 255 and skips those locations."""
    s, t = randn(2, 4, 3, 3), randn(2, 4, 3, 3, seed=1)
    small = torch.randint(0, 4, (2, 3, 3), generator=torch.Generator().manual_seed(2))
    small[1, 2, 0] = 255
    full = small.repeat_interleave(4, 1).repeat_interleave(4, 2)  # (2, 12, 12), blocks of 4x4
    keep = small.reshape(-1) != 255
    expected = reference_dkd(as_rows(s)[keep], as_rows(t)[keep], small.reshape(-1)[keep],
                             1.0, 8.0, 4.0)
    assert math.isclose(DKDLoss()(s, t, target=full).item(), expected, rel_tol=1e-5)
