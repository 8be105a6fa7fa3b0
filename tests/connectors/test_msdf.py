import math

import pytest
import torch
import torch.nn as nn

from kdzoo.connectors.msdf import MSDFusion
from kdzoo.connectors.stage_branch import StageBranch
from kdzoo.registry import build

K = 7
BRANCHES = [
    dict(in_channels=8, embed_dim=16, stride=4),
    dict(in_channels=16, embed_dim=16, stride=2, kind='transformer'),
    dict(in_channels=32, embed_dim=16),
]


def stage_maps(batch=3):
    return [torch.randn(batch, 8, 16, 16), torch.randn(batch, 16, 8, 8),
            torch.randn(batch, 32, 4, 4)]


def make_fusion():
    torch.manual_seed(0)
    fusion = MSDFusion(BRANCHES, num_classes=K).eval()
    with torch.no_grad():  # a gate far from its near-uniform initialisation
        for p in fusion.gate.parameters():
            p.normal_()
    return fusion


def test_fused_logits_match_direct_formula():
    fusion = make_fusion()
    maps = stage_maps()
    d = [branch.descriptor(x) for branch, x in zip(fusion.branches, maps)]
    z = [branch(x) for branch, x in zip(fusion.branches, maps)]
    lin1, lin2 = fusion.gate[0], fusion.gate[2]
    gates = []  # g_s = W2 GELU(W1 d_s + b1) + b2, GELU written with erf
    for s in range(3):
        h = d[s] @ lin1.weight.T + lin1.bias
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        gates.append(h @ lin2.weight.T + lin2.bias)
    expected = torch.zeros(3, K)
    for b in range(3):
        for k in range(K):
            total = sum(math.exp(gates[s][b, k]) for s in range(3))
            expected[b, k] = sum(math.exp(gates[s][b, k]) / total * z[s][b, k] for s in range(3))
    torch.testing.assert_close(fusion(maps), expected, rtol=1e-4, atol=1e-5)


def test_weights_sum_to_one_over_stages_and_depend_on_input():
    fusion = make_fusion()
    maps = stage_maps()
    d = torch.stack([br.descriptor(x) for br, x in zip(fusion.branches, maps)], dim=1)
    z = torch.stack([br(x) for br, x in zip(fusion.branches, maps)], dim=1)
    fused, weights = fusion.fuse(d, z)
    assert weights.shape == (3, 3, K) and fused.shape == (3, K)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3, K))
    assert (weights > 0).all()
    assert weights.std(dim=1).mean() > 0.05  # not uniform over stages
    assert not torch.allclose(weights[0], weights[1])  # per sample


def test_gate_starts_near_uniform():
    torch.manual_seed(0)
    fusion = MSDFusion(BRANCHES, num_classes=K)
    weights = fusion.gate(torch.randn(2, 3, 16)).softmax(dim=1)
    torch.testing.assert_close(weights, torch.full_like(weights, 1 / 3), atol=0.02, rtol=0)


def test_gate_hidden_defaults_to_four_k():
    assert MSDFusion(BRANCHES, num_classes=K).gate[0].out_features == 4 * K
    assert MSDFusion(BRANCHES, num_classes=K, gate_hidden=5).gate[0].out_features == 5


def test_branches_are_shared_by_dotted_path():
    connectors = nn.ModuleDict(dict(msdf=make_fusion()))
    branch = connectors.get_submodule('msdf.branches.1')
    assert branch is connectors['msdf'].branches[1]
    assert isinstance(branch, StageBranch) and branch.num_classes == K
    x = stage_maps()[1]
    before = branch(x)
    with torch.no_grad():
        connectors['msdf'].branches[1].head.bias.add_(1.0)
    torch.testing.assert_close(branch(x), before + 1.0)


def test_gradient_reaches_every_parameter_and_every_stage():
    fusion = make_fusion().train()
    maps = [x.requires_grad_() for x in stage_maps()]
    fusion(maps).logsumexp(dim=1).sum().backward()
    for x in maps:
        assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_accepts_built_branches():
    branches = [StageBranch(8, K, embed_dim=16, stride=4), StageBranch(32, K, embed_dim=16)]
    fusion = MSDFusion(branches, num_classes=K)
    assert fusion.branches[0] is branches[0]
    maps = stage_maps()
    assert fusion([maps[0], maps[2]]).shape == (3, K)


def test_wrong_number_of_maps_names_both_counts():
    with pytest.raises(ValueError, match='MSDFusion: got 2 stage maps for 3 branches'):
        make_fusion()(stage_maps()[:2])


def test_single_tensor_instead_of_list():
    with pytest.raises(ValueError, match='expected a list of 3 stage maps.*got a Tensor'):
        make_fusion()(stage_maps()[0])


def test_wrong_channels_names_expected_and_got():
    maps = stage_maps()
    maps[1] = torch.randn(3, 12, 8, 8)
    with pytest.raises(ValueError, match=r'stage 1 needs a \(B, 16, H, W\) map for branches\[1\], '
                                         r'got shape \(3, 12, 8, 8\)'):
        make_fusion()(maps)


def test_unequal_embed_dims_are_an_error():
    branches = [dict(in_channels=8, embed_dim=16), dict(in_channels=8, embed_dim=32)]
    with pytest.raises(ValueError, match=r'same embed_dim; got \[16, 32\]'):
        MSDFusion(branches, num_classes=K)


def test_branch_num_classes_mismatch_and_empty():
    with pytest.raises(ValueError, match='num_classes=5, the fusion 7'):
        MSDFusion([dict(in_channels=8, num_classes=5)], num_classes=K)
    with pytest.raises(ValueError, match='at least one branch'):
        MSDFusion([], num_classes=K)


@pytest.mark.parametrize('name', ['MSDFusion', 'kdzoo.MSDFusion'])
def test_builds_from_registry(name):
    fusion = build(dict(type=name, branches=BRANCHES, num_classes=K))
    assert isinstance(fusion, MSDFusion)
    assert [type(b) for b in fusion.branches] == [StageBranch] * 3
    assert fusion(stage_maps()).shape == (3, K)


def test_fusion_reuses_the_stage_outputs_of_the_same_tensors():
    """Per-stage items and the fusion share one run of each branch (MLDR-KD's release)."""
    fusion = make_fusion().train()
    calls = [0] * 3
    for i, branch in enumerate(fusion.branches):
        branch.trunk.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    maps = stage_maps()
    stage_logits = [branch(x) for branch, x in zip(fusion.branches, maps)]
    fused = fusion(maps)
    assert calls == [1, 1, 1]
    for m in fusion.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert int(m.num_batches_tracked) == 1
    d = torch.stack([branch.outputs(x)[0] for branch, x in zip(fusion.branches, maps)], dim=1)
    expected, _ = fusion.fuse(d, torch.stack(stage_logits, dim=1))
    assert calls == [1, 1, 1]
    torch.testing.assert_close(fused, expected)
