"""Stage branch: one student stage map -> descriptor ``d_s`` ``(B, D)`` -> stage logits ``(B, K)``.

The per-stage projector of One-for-All KD (Hao et al., "One-for-All: Bridge the Gap Between
Heterogeneous Architectures in Knowledge Distillation", NeurIPS 2023, arXiv 2310.19444; official
code Hao840/OFAKD, ``distillers/ofa.py``), reused as the stage branch of MLDR-KD (arXiv
2502.06189), whose release (Ethan-Yang02/MLDR-KD, ``mldr_kd/msdf.py``, ``CNNStageProjector``)
builds the same CNN branch, without the last conv's bias (see Bias below):

    d_s = pool(trunk(x_s))          (B, D)
    z_s = W d_s + b                 (B, K)

Trunks (simplified from the official code; the input is always a dense map, the layout module
turns tokens into maps before a connector sees them):

- ``kind='cnn'``: ``log2(stride)`` depthwise-separable blocks, each halving the grid (OFA's
  ``SepConv``: dw3x3/s2 -> pw1x1 -> BN -> ReLU -> dw3x3 -> pw1x1 -> BN -> ReLU); widths double
  from ``in_channels`` and the last block outputs ``embed_dim``. ``stride=1`` is a single 1x1
  conv, as OFA and MLDR-KD use for the last stage. Then global average pooling.
- ``kind='transformer'``: patch embedding (a ``stride x stride`` conv with that stride, to
  ``embed_dim`` channels) -> ``depth`` pre-norm transformer blocks (GELU MLP of ratio
  ``mlp_ratio``, ``num_heads`` heads, no dropout) -> mean over tokens -> LayerNorm. OFA merges ViT
  patches to a 7x7 grid and uses ``max(4 - stage, 1)`` blocks of 4 heads. No position embedding:
  the student's own map already carries position, and the patch convolution sees it.

Choosing ``stride``: OFA brings every stage to the last stage's grid, so for a four-stage student
stage ``s`` (1-based) takes ``stride = 2 ** (4 - s)`` (ResNet 56/28/14/7 grids: 8, 4, 2, 1).
``embed_dim`` defaults to ``in_channels``; OFA and MLDR-KD use ``D = max(student, teacher final
width)``. Initialisation follows both releases: convs Kaiming-normal (fan-out), linears truncated
normal (std 0.02) with zero bias.

Bias. The SepConv convs have no bias in either release. The ``stride=1`` 1x1 conv has one in
OFA (``nn.Conv2d(c, D, 1, 1, 0)``, Hao840/OFAKD ``distillers/ofa.py``) and none in MLDR-KD
(``bias=False``, Ethan-Yang02/MLDR-KD ``mldr_kd/msdf.py``, ``CNNStageProjector``): ``bias=True``
(default, OFA) or ``bias=False`` (the MLDR-KD configs) sets it; for ``kind='transformer'`` the same
flag sets the patch embedding's bias.

Once per step. MLDR-KD feeds every branch's output both to a per-stage loss and to the fusion
(``mldr_kd/distiller.py`` runs each projector once and uses its ``(descriptor, logits)`` twice).
In kdzoo the per-stage items (``connector='msdf.branches.<i>'``) and the fusion item
(``connector='msdf'``) call the same branch on the same tensor, so :meth:`StageBranch.outputs`
memoises ``(d_s, z_s)`` of the last input: a second call on the *same tensor object* returns the
same outputs (one graph, BatchNorm statistics updated once). The memo holds a reference to the
input (so its identity cannot be reused) and is valid only while nothing changed: the input's and
every parameter's / buffer's version counter, grad mode, autocast and train/eval mode must all be
equal, no backward may have run through the outputs, and the module was not moved (``.to()``).
:meth:`StageBranch.end_step` drops it; the Distiller calls it at the end of every step.
"""
import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F

from kdzoo.registry import MODELS

KINDS = ('cnn', 'transformer')


def init_weights(module):
    """OFA / MLDR-KD initialisation, applied with ``module.apply(init_weights)``."""
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def separable_conv(in_channels, out_channels, stride):
    """Depthwise 3x3 (``stride``) -> pointwise 1x1 -> BN -> ReLU."""
    return [
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def sep_conv_block(in_channels, out_channels):
    """OFA's ``SepConv``: halves the grid, ``in_channels -> out_channels``."""
    return nn.Sequential(*separable_conv(in_channels, in_channels, 2),
                         *separable_conv(in_channels, out_channels, 1))


class PointwiseTrunk(nn.Sequential):
    """A 1x1 conv, global average pooling, flatten, computed as pool then the conv's linear map:
    both are linear, so the order leaves the value unchanged (up to float rounding), and the conv
    runs on one position per image instead of ``H · W``."""

    def forward(self, x):
        conv = self[0]
        return F.linear(x.mean((-2, -1)), conv.weight.flatten(1), conv.bias)


def cnn_trunk(in_channels, embed_dim, stride, bias=True):
    """``(B, C, H, W) -> (B, embed_dim)``: ``log2(stride)`` SepConv blocks, pool; or for
    ``stride=1`` a 1x1 conv with ``bias`` and pool (a :class:`PointwiseTrunk`)."""
    num_blocks = stride.bit_length() - 1
    if num_blocks == 0:
        return PointwiseTrunk(nn.Conv2d(in_channels, embed_dim, 1, bias=bias),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten())
    widths = [in_channels * 2 ** i for i in range(num_blocks)] + [embed_dim]
    layers = [sep_conv_block(a, b) for a, b in zip(widths[:-1], widths[1:])]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class TransformerTrunk(nn.Module):
    """``(B, C, H, W) -> (B, embed_dim)``: patch embedding, ``depth`` blocks, mean, LayerNorm."""

    def __init__(self, in_channels, embed_dim, stride, depth, num_heads, mlp_ratio, bias=True):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, stride, stride, bias=bias)
        self.blocks = nn.Sequential(*(
            nn.TransformerEncoderLayer(
                embed_dim, num_heads, int(embed_dim * mlp_ratio), dropout=0.0,
                activation='gelu', batch_first=True, norm_first=True)
            for _ in range(depth)))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x):
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        return self.norm(self.blocks(tokens).mean(dim=1))


class Memo:
    """The outputs of one :meth:`StageBranch.compute` call, the input they came from and the
    state they are valid for (:func:`memo_state`)."""

    def __init__(self, inputs, state, outputs):
        self.inputs = inputs  # held: its id() cannot be reused while the memo lives
        self.state = state
        self.outputs = outputs


def autocast_enabled(device_type):
    """``torch.is_autocast_enabled(device_type)``; ``False`` for devices without autocast (meta)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:
        return False


def memo_state(module, x):
    """Everything the outputs of ``module(x)`` depend on besides the values of ``x``'s storage:
    version counters (in-place changes of the input, optimizer steps, ``load_state_dict``), grad
    mode, autocast and train/eval mode."""
    tensors = (x, *module.parameters(), *module.buffers())
    return (tuple(t._version for t in tensors), torch.is_grad_enabled(),
            autocast_enabled(x.device.type), module.training)


@MODELS.register_module()
class StageBranch(nn.Module):
    """OFA-style stage branch: ``(B, in_channels, H, W)`` map -> ``(B, num_classes)`` logits.

    Args:
        in_channels: width of the student stage map.
        num_classes: ``K``, the number of classes of the teacher's logits.
        kind: ``'cnn'`` (default) or ``'transformer'``.
        embed_dim: descriptor width ``D``; default ``in_channels``.
        stride: total down-sampling of the map, a power of two (default 1).
        depth: number of transformer blocks (``kind='transformer'`` only; default 1).
        num_heads: attention heads (transformer; default 4, as OFA); must divide ``embed_dim``.
        mlp_ratio: transformer MLP width / ``embed_dim`` (default 4.0).
        bias: bias of the ``stride=1`` 1x1 conv (cnn) or of the patch embedding (transformer);
            ``True`` as OFA (default), ``False`` as MLDR-KD's release.

    ``outputs(x)`` gives ``(d_s (B, D), z_s (B, K))``, memoised per input tensor (see the module
    docstring); ``descriptor(x)`` is ``d_s``, ``forward(x)`` is ``z_s = head(d_s)``;
    ``compute(x)`` is the same without the memo; ``end_step()`` drops the memo.
    """

    def __init__(self, in_channels, num_classes, kind='cnn', embed_dim=None, stride=1, depth=1,
                 num_heads=4, mlp_ratio=4.0, bias=True):
        super().__init__()
        embed_dim = embed_dim or in_channels
        if kind not in KINDS:
            raise ValueError(f'StageBranch: unknown kind {kind!r}; choose one of {KINDS}')
        if stride < 1 or stride & (stride - 1):
            raise ValueError(f'StageBranch: stride must be a power of two, got {stride}')
        if kind == 'cnn' and depth != 1:
            raise ValueError(
                f"StageBranch: depth={depth} is for kind='transformer'; the cnn branch's depth "
                'is log2(stride)')
        if kind == 'transformer' and embed_dim % num_heads:
            raise ValueError(
                f'StageBranch: embed_dim {embed_dim} is not divisible by num_heads {num_heads}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.stride = stride
        if kind == 'cnn':
            self.trunk = cnn_trunk(in_channels, embed_dim, stride, bias)
        else:
            self.trunk = TransformerTrunk(in_channels, embed_dim, stride, depth, num_heads,
                                          mlp_ratio, bias)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(init_weights)
        self._memo = None

    def check_input(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'StageBranch: expected a (B, {self.in_channels}, H, W) map, '
                f'got shape {tuple(x.shape)}')
        if min(x.shape[-2:]) < self.stride:
            raise ValueError(
                f'StageBranch: a {x.shape[-2]}x{x.shape[-1]} map is smaller than stride '
                f'{self.stride}')

    def compute(self, x):
        """``(d_s, z_s)`` of ``x``, always computed (no memo)."""
        self.check_input(x)
        descriptor = self.trunk(x)
        return descriptor, self.head(descriptor)

    def outputs(self, x):
        """``(d_s, z_s)`` of ``x``: computed once per input tensor while the memo is valid."""
        if x.is_inference():  # no version counter to check: nothing is memoised
            return self.compute(x)
        memo = self._memo
        if memo is not None and memo.inputs is x and memo.state == memo_state(self, x):
            return memo.outputs
        outputs = self.compute(x)
        self.remember(x, outputs)
        return outputs

    def remember(self, x, outputs):
        """Keep ``outputs`` for ``x``; a backward through them drops the memo (its graph is
        freed, so the outputs cannot be used for another loss)."""
        memo = Memo(x, memo_state(self, x), outputs)  # state after BN updated its statistics
        self._memo = memo
        grad_fn = outputs[0].grad_fn
        if grad_fn is not None:
            branch_ref, memo_ref = weakref.ref(self), weakref.ref(memo)

            def drop(*_):
                branch = branch_ref()
                if branch is not None and branch._memo is not None \
                        and branch._memo is memo_ref():
                    branch._memo = None
            grad_fn.register_hook(drop)

    def end_step(self):
        """Drop the memo (called by the Distiller at the end of every distillation step)."""
        self._memo = None

    def descriptor(self, x):
        """The pooled stage descriptor ``d_s`` ``(B, embed_dim)``."""
        return self.outputs(x)[0]

    def forward(self, x):
        return self.outputs(x)[1]

    def _apply(self, fn, *args, **kwargs):
        self._memo = None  # .to() / .half() replace parameters without a version change
        return super()._apply(fn, *args, **kwargs)

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_memo'] = None  # deepcopy / pickle never carry a step's tensors
        return state
