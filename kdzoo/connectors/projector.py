"""Projector: a 1x1 convolution (+ BatchNorm) that matches the student's width to the teacher's.

The learnable regressor of FitNets (Romero et al., "FitNets: Hints for Thin Deep Nets",
ICLR 2015, arXiv 1412.6550) in its common 1x1 form, also used by LFCC and feature baselines to
bring a student map ``(B, Cs, H, W)`` to the teacher width ``Ct``:

    y = BN(W x)       W: (Ct, Cs) applied at every location; no conv bias when ``norm=True``

Inputs: a dense map ``(B, Cs, H, W)``, or a vector ``(B, Cs)`` (pooled features, logits), which
gets the same weights as a linear map (computed as one: ``F.linear``, the cost of timm's
``nn.Linear`` projection). With ``norm=True`` a vector input in training mode needs a batch of at
least 2 (BatchNorm statistics).
"""
import torch.nn as nn
import torch.nn.functional as F

from kdzoo.registry import MODELS


@MODELS.register_module()
class Projector(nn.Module):
    """``(B, in_channels[, H, W]) -> (B, out_channels[, H, W])`` by a 1x1 conv (+ BatchNorm2d).

    Args:
        in_channels: the student width.
        out_channels: the width the loss expects (usually the teacher's).
        norm: follow the conv with ``BatchNorm2d`` (default ``True``).
    """

    def __init__(self, in_channels, out_channels, norm=True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=not norm)
        self.norm = nn.BatchNorm2d(out_channels) if norm else nn.Identity()

    def forward(self, x):
        if x.dim() not in (2, 4) or x.shape[1] != self.in_channels:
            raise ValueError(
                f'Projector: expected a (B, {self.in_channels}, H, W) map or a '
                f'(B, {self.in_channels}) vector, got shape {tuple(x.shape)}')
        if x.dim() == 4:
            return self.norm(self.conv(x))
        y = F.linear(x, self.conv.weight.flatten(1), self.conv.bias)
        if isinstance(self.norm, nn.Identity):
            return y
        return self.norm(y[:, :, None, None]).flatten(1)
