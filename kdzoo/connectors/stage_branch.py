"""Stage branch: one student stage map -> descriptor ``d_s`` ``(B, D)`` -> stage logits ``(B, K)``.

The per-stage projector of One-for-All KD (Hao et al., "One-for-All: Bridge the Gap Between
Heterogeneous Architectures in Knowledge Distillation", NeurIPS 2023, arXiv 2310.19444; official
code Hao840/OFAKD, ``distillers/ofa.py``), reused as the stage branch of MLDR-KD (arXiv
2502.06189, METHODS.md §3), whose release builds the same CNN branch:

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
"""
import torch.nn as nn

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


def cnn_trunk(in_channels, embed_dim, stride):
    """``(B, C, H, W) -> (B, embed_dim)``: ``log2(stride)`` SepConv blocks (or a 1x1 conv), pool."""
    num_blocks = stride.bit_length() - 1
    if num_blocks == 0:
        layers = [nn.Conv2d(in_channels, embed_dim, 1)]
    else:
        widths = [in_channels * 2 ** i for i in range(num_blocks)] + [embed_dim]
        layers = [sep_conv_block(a, b) for a, b in zip(widths[:-1], widths[1:])]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


class TransformerTrunk(nn.Module):
    """``(B, C, H, W) -> (B, embed_dim)``: patch embedding, ``depth`` blocks, mean, LayerNorm."""

    def __init__(self, in_channels, embed_dim, stride, depth, num_heads, mlp_ratio):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, stride, stride)
        self.blocks = nn.Sequential(*(
            nn.TransformerEncoderLayer(
                embed_dim, num_heads, int(embed_dim * mlp_ratio), dropout=0.0,
                activation='gelu', batch_first=True, norm_first=True)
            for _ in range(depth)))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x):
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        return self.norm(self.blocks(tokens).mean(dim=1))


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

    ``descriptor(x)`` gives ``d_s`` ``(B, D)``; ``forward(x) = head(descriptor(x))`` ``(B, K)``.
    """

    def __init__(self, in_channels, num_classes, kind='cnn', embed_dim=None, stride=1, depth=1,
                 num_heads=4, mlp_ratio=4.0):
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
            self.trunk = cnn_trunk(in_channels, embed_dim, stride)
        else:
            self.trunk = TransformerTrunk(in_channels, embed_dim, stride, depth, num_heads,
                                          mlp_ratio)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(init_weights)

    def descriptor(self, x):
        """The pooled stage descriptor ``d_s`` ``(B, embed_dim)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'StageBranch: expected a (B, {self.in_channels}, H, W) map, '
                f'got shape {tuple(x.shape)}')
        if min(x.shape[-2:]) < self.stride:
            raise ValueError(
                f'StageBranch: a {x.shape[-2]}x{x.shape[-1]} map is smaller than stride '
                f'{self.stride}')
        return self.trunk(x)

    def forward(self, x):
        return self.head(self.descriptor(x))
