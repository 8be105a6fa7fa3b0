import pytest
import torch

from kdzoo.connectors.projector import Projector
from kdzoo.registry import build


def randomise_bn(bn):
    """Non-trivial BatchNorm affine parameters and running statistics."""
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)


def test_map_matches_direct_conv_and_bn_in_eval():
    torch.manual_seed(0)
    proj = Projector(6, 4).eval()
    randomise_bn(proj.norm)
    x = torch.randn(3, 6, 5, 7)
    weight = proj.conv.weight[:, :, 0, 0]
    bn = proj.norm
    expected = torch.empty(3, 4, 5, 7)
    for o in range(4):
        z = sum(weight[o, c] * x[:, c] for c in range(6))
        expected[:, o] = (z - bn.running_mean[o]) / torch.sqrt(bn.running_var[o] + bn.eps) \
            * bn.weight[o] + bn.bias[o]
    torch.testing.assert_close(proj(x), expected, rtol=1e-5, atol=1e-5)


def test_map_without_norm_is_conv_with_bias():
    torch.manual_seed(0)
    proj = Projector(6, 4, norm=False)
    assert proj.conv.bias is not None and isinstance(proj.norm, torch.nn.Identity)
    x = torch.randn(2, 6, 3, 3)
    expected = torch.einsum('oc,bchw->bohw', proj.conv.weight[:, :, 0, 0], x) \
        + proj.conv.bias[None, :, None, None]
    torch.testing.assert_close(proj(x), expected, rtol=1e-5, atol=1e-5)


def test_vector_is_linear_map_with_same_weights():
    torch.manual_seed(0)
    proj = Projector(6, 4).eval()
    randomise_bn(proj.norm)
    v = torch.randn(5, 6)
    bn = proj.norm
    z = v @ proj.conv.weight[:, :, 0, 0].T
    expected = (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    out = proj(v)
    assert out.shape == (5, 4)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_train_mode_normalises_with_batch_statistics():
    torch.manual_seed(0)
    proj = Projector(6, 4)
    y = proj(torch.randn(4, 6, 5, 5) * 3 + 2)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=(0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3,
                               rtol=0)


def test_gradient_reaches_input_and_every_parameter():
    proj = Projector(6, 4)
    x = torch.randn(2, 6, 3, 3, requires_grad=True)
    (proj(x) * torch.randn(2, 4, 3, 3)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in proj.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('shape', [(2, 5, 3, 3), (2, 5), (2, 9, 6)])
def test_bad_input_names_expected_and_got(shape):
    with pytest.raises(ValueError, match=r'Projector: expected a \(B, 6, H, W\).*got shape'):
        Projector(6, 4)(torch.randn(*shape))


@pytest.mark.parametrize('name', ['Projector', 'kdzoo.Projector'])
def test_builds_from_registry(name):
    proj = build(dict(type=name, in_channels=8, out_channels=16, norm=False))
    assert isinstance(proj, Projector)
    assert proj(torch.randn(2, 8, 4, 4)).shape == (2, 16, 4, 4)
