"""Layout conversions against direct indexing."""
import pytest
import torch
import torch.nn.functional as F
from helpers import randn

from kdzoo import layout


def test_tokens_with_prefix_to_map_matches_indexing():
    x = randn(2, 1 + 12, 5)
    m = layout.to_map(x, 'tokens', num_prefix_tokens=1, grid=(3, 4))
    assert m.shape == (2, 5, 3, 4)
    for i in range(3):
        for j in range(4):
            assert torch.equal(m[:, :, i, j], x[:, 1 + i * 4 + j])
    assert layout.to_map(randn(2, 16, 5), 'tokens').shape == (2, 5, 4, 4)


def test_nhwc_to_nchw():
    x = randn(2, 3, 4, 5)
    assert torch.equal(layout.to_map(x, 'nhwc')[:, 4, 1, 2], x[:, 1, 2, 4])


def test_align_pools_to_smaller_grid_and_bilinear_for_logits():
    s, t = randn(2, 6, 14, 14), randn(2, 6, 7, 7)
    s2, t2 = layout.align(s, t)
    assert s2.shape == t2.shape == (2, 6, 7, 7) and t2 is t
    assert torch.allclose(s2, F.avg_pool2d(s, 2))
    s3, _ = layout.align(s, t, mode='bilinear')
    assert torch.allclose(s3, F.interpolate(s, size=(7, 7), mode='bilinear', align_corners=False))


def test_as_samples_orders_locations_image_by_image():
    x = randn(2, 3, 2, 2)
    samples = layout.as_samples(x)
    assert samples.shape == (8, 3) and torch.equal(samples[5], x[1, :, 0, 1])


def test_bad_layouts_are_named():
    with pytest.raises(ValueError, match='not a square grid'):
        layout.to_map(randn(1, 15, 3), 'tokens')
    with pytest.raises(ValueError, match="unknown layout 'nwhc'"):
        layout.to_map(randn(1, 2, 2, 3), 'nwhc')
    with pytest.raises(ValueError, match='student must be a \\(B, C, H, W\\) map'):
        layout.align(randn(1, 4, 3), randn(1, 4, 2, 2))
