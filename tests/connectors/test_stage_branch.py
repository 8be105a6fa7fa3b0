import pytest
import torch

from kdzoo.connectors.stage_branch import StageBranch
from kdzoo.registry import build

KINDS = ['cnn', 'transformer']


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('stride', [1, 2, 4])
def test_shapes_and_forward_is_head_of_descriptor(kind, stride):
    torch.manual_seed(0)
    branch = StageBranch(16, 10, kind=kind, embed_dim=32, stride=stride).eval()
    x = torch.randn(3, 16, 8, 8)
    d = branch.descriptor(x)
    assert d.shape == (3, 32)
    logits = branch(x)
    assert logits.shape == (3, 10)
    torch.testing.assert_close(logits, d @ branch.head.weight.T + branch.head.bias)


def test_embed_dim_defaults_to_in_channels():
    for kind in KINDS:
        branch = StageBranch(16, 10, kind=kind)
        assert branch.embed_dim == 16
        assert branch.descriptor(torch.randn(2, 16, 4, 4)).shape == (2, 16)


@pytest.mark.parametrize('bias', [True, False])
def test_cnn_stride_one_is_pooled_one_by_one_conv(bias):
    """The trunk pools before its 1x1 conv: value and gradients equal the conv on every position
    followed by the pooling (the modules it holds, run in order)."""
    torch.manual_seed(0)
    branch = StageBranch(16, 10, embed_dim=24, bias=bias)
    conv = branch.trunk[0]
    x = torch.randn(2, 16, 5, 6, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    got = branch.descriptor(x)
    expected = torch.nn.Sequential(*branch.trunk)(x_ref)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got, x.mean(dim=(2, 3)) @ conv.weight[:, :, 0, 0].T
                               + (conv.bias if bias else 0), rtol=1e-6, atol=1e-6)
    weights = [p for p in branch.trunk.parameters()]
    grads = torch.autograd.grad(got.square().sum(), [x, *weights])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x_ref, *weights])
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('stride', [2, 4, 8])
def test_cnn_trunk_downsamples_by_stride_and_doubles_width(stride):
    branch = StageBranch(8, 10, embed_dim=40, stride=stride)
    blocks = branch.trunk[:-2]  # drop pool + flatten
    assert len(blocks) == stride.bit_length() - 1
    y = blocks(torch.randn(2, 8, 16, 16))
    assert y.shape == (2, 40, 16 // stride, 16 // stride)
    widths = [block[1].in_channels for block in blocks]
    assert widths == [8 * 2 ** i for i in range(len(blocks))]


@pytest.mark.parametrize('depth', [1, 3])
def test_transformer_depth_and_samples_independent(depth):
    torch.manual_seed(0)
    branch = StageBranch(16, 10, kind='transformer', embed_dim=32, stride=2, depth=depth).eval()
    assert len(branch.trunk.blocks) == depth
    x = torch.randn(4, 16, 8, 8)
    # batch_first attention: one sample's output never depends on the others
    torch.testing.assert_close(branch(x)[1:2], branch(x[1:2]), rtol=1e-5, atol=1e-5)
    # attention over tokens: changing one location changes the descriptor
    x2 = x.clone()
    x2[:, :, 0, 0] += 5
    assert not torch.allclose(branch.descriptor(x), branch.descriptor(x2))


@pytest.mark.parametrize('kind', KINDS)
def test_gradient_reaches_input_and_every_parameter(kind):
    torch.manual_seed(0)
    branch = StageBranch(16, 10, kind=kind, embed_dim=32, stride=2)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    branch(x).logsumexp(dim=1).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in branch.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('kind', KINDS)
def test_batch_one_in_eval_is_finite(kind):
    branch = StageBranch(16, 10, kind=kind, stride=2).eval()
    assert torch.isfinite(branch(torch.randn(1, 16, 8, 8))).all()


@pytest.mark.parametrize('shape', [(2, 8, 8, 8), (2, 16), (2, 64, 16)])
def test_bad_input_names_expected_and_got(shape):
    with pytest.raises(ValueError, match=r'StageBranch: expected a \(B, 16, H, W\) map, got shape'):
        StageBranch(16, 10).descriptor(torch.randn(*shape))


def test_map_smaller_than_stride():
    with pytest.raises(ValueError, match='StageBranch: a 2x2 map is smaller than stride 4'):
        StageBranch(16, 10, kind='transformer', stride=4)(torch.randn(2, 16, 2, 2))


@pytest.mark.parametrize('kwargs, message', [
    (dict(kind='mlp'), "unknown kind 'mlp'"),
    (dict(stride=3), 'stride must be a power of two, got 3'),
    (dict(stride=0), 'stride must be a power of two, got 0'),
    (dict(depth=2), "depth=2 is for kind='transformer'"),
    (dict(kind='transformer', embed_dim=30), 'embed_dim 30 is not divisible by num_heads 4'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StageBranch(16, 10, **kwargs)


@pytest.mark.parametrize('name', ['StageBranch', 'kdzoo.StageBranch'])
@pytest.mark.parametrize('kind', KINDS)
def test_builds_from_registry(name, kind):
    branch = build(dict(type=name, in_channels=16, num_classes=5, kind=kind))
    assert isinstance(branch, StageBranch)
    assert branch(torch.randn(2, 16, 8, 8)).shape == (2, 5)


def conv_biases(branch):
    return [m.bias is not None for m in branch.modules() if isinstance(m, torch.nn.Conv2d)]


def test_bias_option_sets_the_last_conv_bias_as_each_release():
    # OFA: the stride-1 1x1 conv has a bias; MLDR-KD's release: bias=False. SepConvs: never.
    assert conv_biases(StageBranch(16, 10)) == [True]
    assert conv_biases(StageBranch(16, 10, bias=False)) == [False]
    assert conv_biases(StageBranch(16, 10, stride=4)) == [False] * 8
    assert conv_biases(StageBranch(16, 10, stride=4, bias=False)) == [False] * 8
    assert conv_biases(StageBranch(16, 10, kind='transformer', bias=False)) == [False]
    assert 'trunk.0.bias' not in StageBranch(16, 10, bias=False).state_dict()


class CallCounter:
    """Counts the forward calls of a branch's trunk."""

    def __init__(self, branch):
        self.calls = 0
        branch.trunk.register_forward_hook(lambda *_: setattr(self, 'calls', self.calls + 1))


def bn_counts(branch):
    return [int(m.num_batches_tracked) for m in branch.modules()
            if isinstance(m, torch.nn.BatchNorm2d)]


def test_same_tensor_runs_the_trunk_once_until_end_step():
    torch.manual_seed(0)
    branch = StageBranch(8, 5, embed_dim=16, stride=4)
    counter = CallCounter(branch)
    x = torch.randn(2, 8, 8, 8)
    logits, d = branch(x), branch.descriptor(x)
    d2, logits2 = branch.outputs(x)
    assert d2 is d and logits2 is logits and counter.calls == 1
    assert bn_counts(branch) == [1, 1, 1, 1]  # statistics updated once, not once per use
    branch.end_step()
    branch(x)
    assert counter.calls == 2 and bn_counts(branch) == [2, 2, 2, 2]
    branch(x.clone())  # another tensor, equal values: computed again
    assert counter.calls == 3


def changes():
    def in_place_input(branch, x):
        x.add_(1.0)

    def optimizer_step(branch, x):
        with torch.no_grad():
            branch.head.bias.add_(1.0)

    def load_state_dict(branch, x):
        branch.load_state_dict({k: v + 1 for k, v in branch.state_dict().items()})

    def eval_mode(branch, x):
        branch.eval()

    def moved(branch, x):
        branch.to(torch.float64).to(torch.float32)
    return [in_place_input, optimizer_step, load_state_dict, eval_mode, moved]


@pytest.mark.parametrize('change', changes(), ids=lambda f: f.__name__)
def test_memo_is_not_used_after_a_change(change):
    torch.manual_seed(0)
    branch = StageBranch(8, 5, embed_dim=16, stride=2)
    counter = CallCounter(branch)
    x = torch.randn(2, 8, 4, 4)
    branch(x)
    change(branch, x)
    after = branch(x)
    assert counter.calls == 2
    torch.testing.assert_close(after, branch.compute(x)[1])


def test_grad_mode_is_part_of_the_memo():
    branch = StageBranch(8, 5)
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        assert branch(x).grad_fn is None
    assert branch(x).grad_fn is not None


def test_backward_through_the_outputs_drops_the_memo():
    """Without end_step (a plain training loop), the next step on the same leaf tensor must not
    reuse outputs whose graph the backward freed."""
    torch.manual_seed(0)
    branch = StageBranch(8, 5, embed_dim=16, stride=2)
    counter = CallCounter(branch)
    x = torch.randn(2, 8, 4, 4, requires_grad=True)
    for step in range(2):
        branch(x).sum().backward()
    assert counter.calls == 2


def test_memo_gives_the_values_and_gradients_of_two_separate_calls():
    torch.manual_seed(0)
    branch = StageBranch(8, 5, embed_dim=16, stride=4)
    x = torch.randn(3, 8, 8, 8)

    def loss(outputs_fn):
        branch.zero_grad()
        d, z = outputs_fn(x)
        z2 = outputs_fn(x)[1]
        total = z.logsumexp(1).sum() + (z2 * d[:, :5]).sum()
        total.backward()
        return total.detach(), [p.grad.clone() for p in branch.parameters()]

    memo_value, memo_grads = loss(branch.outputs)
    branch.end_step()
    value, grads = loss(branch.compute)
    torch.testing.assert_close(memo_value, value)
    for a, b in zip(memo_grads, grads):
        torch.testing.assert_close(a, b)


def test_deepcopy_and_pickle_carry_no_memo():
    import copy
    import pickle
    branch = StageBranch(8, 5, stride=2)
    branch(torch.randn(2, 8, 4, 4).requires_grad_())
    assert branch._memo is not None
    assert copy.deepcopy(branch)._memo is None
    assert pickle.loads(pickle.dumps(branch))._memo is None


def test_inference_mode_is_computed_each_time():
    branch = StageBranch(8, 5).eval()
    counter = CallCounter(branch)
    with torch.inference_mode():
        x = torch.randn(2, 8, 4, 4)
        branch(x), branch(x)
    assert counter.calls == 2
