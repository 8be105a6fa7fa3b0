import math

import pytest
import torch
from loss_checks import (
    check_builds,
    check_dense_errors,
    check_low_precision,
    check_student_only_gradient,
    randn,
    vit_and_cnn_maps,
)

from kdzoo.losses.sdd import SDDLoss


def window_means(logit_map, g):
    """Adaptive g x g average pooling by definition: window i spans
    [floor(iH/g), ceil((i+1)H/g))."""
    _, height, width = logit_map.shape
    means = []
    for i in range(g):
        for j in range(g):
            rows = slice(i * height // g, math.ceil((i + 1) * height / g))
            cols = slice(j * width // g, math.ceil((j + 1) * width / g))
            means.append(logit_map[:, rows, cols].mean((1, 2)).tolist())
    return means


def kl(zs, zt, tau):
    es, et = [math.exp(v / tau) for v in zs], [math.exp(v / tau) for v in zt]
    return sum(q / sum(et) * math.log(q / sum(et) / (p / sum(es))) for q, p in zip(et, es))


def reference_sdd(student, teacher, grids, tau, w_comp, target=None):
    total = 0.0
    for n in range(student.shape[0]):
        glob = teacher[n].mean((1, 2))
        label = int(glob.argmax()) if target is None else int(target[n])
        for g in grids:
            for zs, zt in zip(window_means(student[n], g), window_means(teacher[n], g)):
                weight = 1.0 if max(range(len(zt)), key=zt.__getitem__) == label else w_comp
                total += weight * kl(zs, zt, tau)
    return tau ** 2 * total / student.shape[0]


def test_matches_window_loops_with_and_without_target():
    s, t = randn(3, 5, 8, 8, seed=1), randn(3, 5, 8, 8, seed=2, scale=2)
    target = torch.tensor([0, 3, 4])
    for grids, tau, w_comp in (((1, 2, 4), 4.0, 2.0), ((1, 3), 1.0, 3.0)):
        loss = SDDLoss(grids, tau, w_comp)
        assert math.isclose(loss(s, t).item(),
                            reference_sdd(s, t, grids, tau, w_comp), rel_tol=1e-5)
        assert math.isclose(loss(s, t, target=target).item(),
                            reference_sdd(s, t, grids, tau, w_comp, target), rel_tol=1e-5)


def test_complementary_samples_get_w_comp():
    s, t = randn(2, 4, 4, 4, seed=1), randn(2, 4, 4, 4, seed=2, scale=3)
    consistent_only = SDDLoss(w_comp=1.0)(s, t)
    weighted = SDDLoss(w_comp=2.0)(s, t)
    assert weighted > consistent_only  # random teachers disagree locally somewhere
    global_only = SDDLoss(grids=(1,))(s, t)  # no target: the global window is always consistent
    kd = 16 * torch.nn.functional.kl_div((s.mean((2, 3)) / 4).log_softmax(1),
                                         (t.mean((2, 3)) / 4).log_softmax(1), log_target=True,
                                         reduction='batchmean')
    torch.testing.assert_close(global_only, kd)


def test_vit_tokens_vs_cnn_map_zero_when_equal_and_edge_cases():
    _, vit_map, cnn_map = vit_and_cnn_maps(2, 5)
    resized = torch.nn.functional.interpolate(vit_map, (7, 7), mode='bilinear', align_corners=False)
    expected = reference_sdd(cnn_map, resized, (1, 2, 4), 4.0, 2.0)
    assert math.isclose(SDDLoss()(cnn_map, vit_map).item(), expected, rel_tol=1e-5)
    check_student_only_gradient(SDDLoss(), cnn_map, vit_map, target=torch.tensor([1, 2]))
    assert SDDLoss()(cnn_map, cnn_map.clone()).item() < 1e-5
    flat = torch.zeros(1, 2, 4, 4)  # batch 1, 2 classes, all-equal logits
    torch.testing.assert_close(SDDLoss()(flat, flat, target=torch.tensor([1])), torch.tensor(0.0))
    check_student_only_gradient(SDDLoss(), flat, randn(1, 2, 4, 4), target=torch.tensor([1]))


def test_precision_registry_errors():
    check_low_precision(SDDLoss(), randn(2, 5, 4, 4), randn(2, 5, 4, 4, seed=1))
    check_builds('SDDLoss')
    check_dense_errors(SDDLoss(), 'SDDLoss')
    with pytest.raises(ValueError, match='SDDLoss: 3 labels do not match 2 samples'):
        SDDLoss()(randn(2, 5, 4, 4), randn(2, 5, 4, 4), target=torch.tensor([0, 1, 2]))
