import math

import pytest
import torch
from loss_checks import (
    as_rows,
    check_contract,
    check_low_precision,
    check_student_only_gradient,
    randn,
)

from kdzoo.losses.ofa import OFALoss


def reference_ofa(student, teacher, target, eps, tau):
    """Loops: mean_n −Σ_c [(p_t,c + 1[c=y])^eps − 1[c=y]] log p_s,c."""
    total = 0.0
    for zs, zt, y in zip(student.tolist(), teacher.tolist(), target.tolist()):
        es, et = [math.exp(v / tau) for v in zs], [math.exp(v / tau) for v in zt]
        for c in range(len(zs)):
            hot = 1.0 if c == y else 0.0
            total -= ((et[c] / sum(et) + hot) ** eps - hot) * math.log(es[c] / sum(es))
    return total / len(target)


def test_matches_loop_formula():
    s, t, y = randn(6, 5, seed=1), randn(6, 5, seed=2, scale=3), torch.tensor([0, 1, 2, 3, 4, 0])
    for eps, tau in ((1.0, 1.0), (1.5, 2.0)):
        got = OFALoss(eps, tau)(s, t, target=y).item()
        assert math.isclose(got, reference_ofa(s, t, y, eps, tau), rel_tol=1e-5)


def test_eps_one_is_cross_entropy_to_the_teacher():
    s, t, y = randn(4, 5, seed=1), randn(4, 5, seed=2), torch.tensor([0, 1, 2, 3])
    expected = -(t.softmax(1) * s.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(OFALoss()(s, t, target=y), expected)


def test_minimum_and_edge_cases():
    """eps=1: minimal at the teacher (value = its entropy); eps=1.5: minimal at p_s ∝ weights,
    which puts more mass on the label than the teacher does."""
    t, y = randn(3, 4, seed=1), torch.tensor([0, 2, 3])
    entropy = -(t.softmax(1) * t.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(OFALoss()(t.clone(), t, target=y), entropy)
    assert OFALoss()(randn(3, 4, seed=5), t, target=y) > entropy
    hot = torch.nn.functional.one_hot(y, 4)
    weights = (t.softmax(1) + hot) ** 1.5 - hot
    optimum = weights.log()
    assert OFALoss(eps=1.5)(optimum, t, target=y) < OFALoss(eps=1.5)(t.clone(), t, target=y)
    flat = torch.zeros(1, 2)  # batch 1, 2 classes, all-equal logits
    assert math.isclose(OFALoss()(flat, flat, target=torch.tensor([1])).item(),
                        reference_ofa(flat, flat, torch.tensor([1]), 1.0, 1.0), rel_tol=1e-6)
    saturated = torch.tensor([[1e4, -1e4]])
    check_student_only_gradient(OFALoss(eps=1.5), saturated, -saturated, target=torch.tensor([1]))


def test_dense_maps_ignore_index_gradient_precision_registry_errors():
    s, t = randn(2, 4, 3, 3, seed=1), randn(2, 4, 3, 3, seed=2)
    labels = torch.randint(0, 4, (2, 3, 3), generator=torch.Generator().manual_seed(0))
    labels[1, 2, 2] = 255
    keep = labels.reshape(-1) != 255
    flat_s, flat_t = as_rows(s), as_rows(t)
    expected = reference_ofa(flat_s[keep], flat_t[keep], labels.reshape(-1)[keep], 1.0, 1.0)
    assert math.isclose(OFALoss()(s, t, target=labels).item(), expected, rel_tol=1e-5)
    all_ignored = OFALoss()(s, t, target=torch.full((2, 3, 3), 255))
    assert all_ignored.item() == 0
    y = torch.tensor([0, 1, 2, 3])
    check_contract('OFALoss', randn(4, 5), randn(4, 5, seed=1), target=y)
    check_low_precision(OFALoss(eps=1.5), randn(4, 5), randn(4, 5, seed=1), target=y)
    with pytest.raises(ValueError, match='OFALoss: needs ground-truth labels'):
        OFALoss()(randn(4, 5), randn(4, 5))
