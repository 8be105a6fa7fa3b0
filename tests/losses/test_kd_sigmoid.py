"""KDLoss(sigmoid=True): the binary KD of every class, for sigmoid classifiers' dense scores
(issue 28 point 6: per-anchor scores of RetinaNet's cls_scores get a loss that treats each
anchor's classes as the head does, not one softmax over anchors and classes)."""
import math

import pytest
import torch
from loss_checks import randn

from kdzoo.losses.kd import KDLoss


def reference(student, teacher, tau):
    """Loops: tau² · mean_n Σ_c binary KL(sigmoid(t/tau) ‖ sigmoid(s/tau))."""
    total = 0.0
    for zs, zt in zip(student.tolist(), teacher.tolist()):
        for s, t in zip(zs, zt):
            q_s, q_t = 1 / (1 + math.exp(-s / tau)), 1 / (1 + math.exp(-t / tau))
            total += q_t * math.log(q_t / q_s) + (1 - q_t) * math.log((1 - q_t) / (1 - q_s))
    return tau ** 2 * total / len(student)


def test_matches_the_loop_formula():
    s, t = randn(6, 5, seed=1), randn(6, 5, seed=2, scale=3)
    for tau in (1.0, 4.0):
        assert math.isclose(KDLoss(tau, sigmoid=True)(s, t).item(), reference(s, t, tau),
                            rel_tol=1e-5)


def test_each_channel_on_its_own_unlike_one_softmax():
    """Adding a constant to every channel of a location changes every sigmoid (so the binary KD
    sees it) but no softmax (plain KD does not): the two treat the class axis differently."""
    s = randn(2, 18, 3, 3)  # 2 anchors x 9 classes per location
    shifted = s + 2.0
    assert KDLoss()(s, shifted).item() < 1e-5
    assert KDLoss(sigmoid=True)(s, shifted).item() > 0.1
    assert KDLoss(sigmoid=True)(s, s.clone()).item() < 1e-6


def test_saturated_logits_stay_finite():
    s = torch.tensor([[-80.0, 80.0]])
    t = torch.tensor([[80.0, -80.0]])
    assert torch.isfinite(KDLoss(tau=1.0, sigmoid=True)(s, t))


def test_sigmoid_must_be_a_boolean():
    with pytest.raises(ValueError, match=r"KDLoss: sigmoid must be True or False, got 'yes'"):
        KDLoss(sigmoid='yes')
