import re

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


def test_feature_vectors_match_the_formula_and_timms_feature_loss():
    """Pooled features (B, C), the classifier's 'pre_logits' readout: the mean over b, c, as timm's
    FeatureDistillationTask computes it (F.mse_loss of the two vectors); the teacher gets no
    gradient."""
    s, t = randn(4, 6, seed=1).requires_grad_(), randn(4, 6, seed=2).requires_grad_()
    value = MSELoss()(s, t)
    expected = sum((a - b) ** 2 for a, b in zip(s.flatten().tolist(), t.flatten().tolist())) / 24
    torch.testing.assert_close(value.item(), expected, rtol=1e-5, atol=1e-6)
    value.backward()
    torch.testing.assert_close(s.grad, 2 * (s - t).detach() / 24)
    assert t.grad is None


def test_feature_vectors_of_unequal_width_suggest_a_projector():
    with pytest.raises(ValueError, match=re.escape(
            'MSELoss: feature vectors differ in shape: student (2, 3) vs teacher (2, 5); unequal '
            "widths need a connector, e.g. connectors=dict(proj=dict(type='Projector', "
            "in_channels=3, out_channels=5, norm=False)) and connector='proj'")):
        MSELoss()(randn(2, 3), randn(2, 5))
