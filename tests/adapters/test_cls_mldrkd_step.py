"""MLDR-KD as released: in one distillation step each stage branch runs once, and its output
feeds both its per-stage DFRA item and the fusion (Ethan-Yang02/MLDR-KD, mldr_kd/distiller.py).

The items are configs/cls/_base_/mldrkd.py's, on a tiny ResNet student (4 stages) and a tiny
ConvNeXt teacher. The memoised step must give the values and gradients of the un-memoised
computation (each branch run once per use), with BatchNorm statistics updated once, not twice.
"""
import copy
import os

import pytest
import torch
from mmengine.config import Config

from kdzoo.adapters.cls import DistillClassifier
from kdzoo.connectors.stage_branch import StageBranch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ITEMS = Config.fromfile(os.path.join(REPO, 'configs', 'cls', '_base_', 'mldrkd.py'))
STUDENT = dict(type='TimmClassifier', model_name='test_resnet', num_classes=4, img_size=64)
TEACHER = dict(type='TimmClassifier', model_name='test_convnext', num_classes=4, img_size=64)
# test_resnet at 64 px: stages (32, 48, 192, 96) channels at 16/8/4/2 -> strides 8/4/2/1 to 2x2
BRANCHES = [dict(in_channels=c, stride=s, embed_dim=64, bias=False)
            for c, s in ((32, 8), (48, 4), (192, 2), (96, 1))]


def build_model():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match='no checkpoint'):
        return DistillClassifier(STUDENT, dict(
            teacher=dict(config=TEACHER),
            losses=[dict(item) for item in ITEMS.mldrkd_losses],
            connectors=dict(msdf=dict(type='MSDFusion', num_classes=4, branches=BRANCHES)))
        ).train()


def branches(model):
    return list(model.distiller.connectors['msdf'].branches)


def bn_counts(branch):
    return [int(m.num_batches_tracked) for m in branch.modules()
            if isinstance(m, torch.nn.BatchNorm2d)]


def step(model):
    """One training step's losses (as the runner's train_step computes them) and gradients."""
    torch.manual_seed(1)
    inputs = torch.randint(0, 256, (6, 3, 32, 32)).float()
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    model.zero_grad()
    losses = model(inputs, labels, mode='loss')
    # the Distiller ended the step: no branch keeps this step's tensors
    assert all(branch._memo is None for branch in branches(model))
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


def count_calls(model):
    calls = [0] * 4
    for i, branch in enumerate(branches(model)):
        branch.trunk.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    return calls


def test_each_branch_runs_once_per_step_and_bn_counts_one_batch():
    model = build_model()
    calls = count_calls(model)
    losses, _ = step(model)
    assert {f'distill.loss_dfra_stage{i}' for i in range(1, 5)} | {
        'distill.loss_dfra_fused', 'distill.loss_dfra_logits'} <= set(losses)
    assert calls == [1, 1, 1, 1]
    for branch in branches(model):
        assert set(bn_counts(branch)) <= {1}
    assert [len(bn_counts(b)) for b in branches(model)] == [6, 4, 2, 0]
    assert all(b.trunk[0].bias is None for b in branches(model)[3:])  # stage 4, as released
    step(model)  # the next step (new tensors): once more each
    assert calls == [2, 2, 2, 2]
    assert all(set(bn_counts(b)) <= {2} for b in branches(model))


def unmemoised(model):
    """The same model computing each branch at every use (what kdzoo did before)."""
    reference = copy.deepcopy(model)
    for branch in branches(reference):
        branch.outputs = branch.compute
    return reference


def test_values_and_gradients_equal_the_unmemoised_computation():
    model = build_model()
    reference = unmemoised(model)
    calls = count_calls(reference)
    losses, grads = step(model)
    ref_losses, ref_grads = step(reference)
    assert calls == [2, 2, 2, 2]  # the per-stage item and the fusion each ran the branch
    assert all(set(bn_counts(b)) <= {2} for b in branches(reference))
    assert losses.keys() == ref_losses.keys()
    for key in losses:
        torch.testing.assert_close(losses[key], ref_losses[key], rtol=1e-5, atol=1e-6)
    assert grads.keys() == ref_grads.keys()
    assert any(k.startswith('distiller.connectors.msdf.branches.0.trunk') for k in grads)
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-4, atol=1e-6,
                                   msg=name)


def test_branch_memo_is_only_for_the_same_tensor():
    model = build_model()
    branch = branches(model)[3]
    assert isinstance(branch, StageBranch)
    x = torch.randn(2, 96, 2, 2)
    assert branch(x) is branch(x)
    assert branch(x) is not branch(x.clone())
