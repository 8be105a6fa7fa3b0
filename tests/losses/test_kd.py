import math

import torch
from loss_checks import (
    as_rows,
    check_contract,
    check_student_only_gradient,
    randn,
    vit_and_cnn_maps,
)

from kdzoo.losses.kd import KDLoss


def reference_kd(student, teacher, tau):
    """Loops: tau² · mean_n Σ_c p_t log(p_t / p_s)."""
    total = 0.0
    for zs, zt in zip(student.tolist(), teacher.tolist()):
        es = [math.exp(v / tau) for v in zs]
        et = [math.exp(v / tau) for v in zt]
        ps = [v / sum(es) for v in es]
        pt = [v / sum(et) for v in et]
        total += sum(q * math.log(q / p) for q, p in zip(pt, ps))
    return tau ** 2 * total / len(student)


def test_matches_loop_formula():
    s, t = randn(6, 5, seed=1), randn(6, 5, seed=2, scale=3)
    for tau in (1.0, 4.0):
        assert math.isclose(KDLoss(tau)(s, t).item(), reference_kd(s, t, tau), rel_tol=1e-5)


def test_zero_iff_equal_and_edge_cases():
    s = randn(3, 7)
    assert KDLoss()(s, s.clone()).item() < 1e-6
    assert KDLoss()(s, randn(3, 7, seed=5)).item() > 1e-3
    assert KDLoss()(torch.zeros(1, 7), torch.zeros(1, 7)).item() == 0  # batch 1, all equal
    two = KDLoss(tau=1.0)(randn(4, 2), randn(4, 2, seed=3))
    assert math.isclose(two.item(), reference_kd(randn(4, 2), randn(4, 2, seed=3), 1.0),
                        rel_tol=1e-5)
    saturated = KDLoss()(torch.tensor([[1e4, -1e4]]), torch.tensor([[-1e4, 1e4]]))
    assert torch.isfinite(saturated)


def test_contract():
    check_contract('KDLoss', randn(4, 5), randn(4, 5, seed=1))


def test_dense_maps_vit_tokens_vs_cnn_map():
    """ViT 14x14 token logits (1 prefix token) vs a CNN 7x7 logit map: the ViT map is resized
    bilinearly to 7x7 and every location is one sample."""
    _, vit_map, cnn_map = vit_and_cnn_maps(2, 5)
    resized = torch.nn.functional.interpolate(vit_map, (7, 7), mode='bilinear', align_corners=False)
    expected = reference_kd(as_rows(cnn_map), as_rows(resized), 4.0)
    assert math.isclose(KDLoss()(cnn_map, vit_map).item(), expected, rel_tol=1e-5)
    check_student_only_gradient(KDLoss(), cnn_map, vit_map)
