"""The normalisation an mmseg / mmdet student's ONNX graph starts with (docs/deploy.md)."""
import torch
from torch import nn

from .base import normalisation


class Normalise(nn.Module):
    """An mmseg / mmdet data preprocessor's tensor ops on a ``(B, 3, H, W)`` 0-255 batch:
    optional BGR<->RGB flip, then ``(x - mean) / std``."""

    def __init__(self, preprocessor):
        super().__init__()
        mean, std, self.flip = normalisation(preprocessor)
        if mean is None:
            mean, std = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
        self.register_buffer('mean', mean.detach().clone().view(1, -1, 1, 1).float())
        self.register_buffer('std', std.detach().clone().view(1, -1, 1, 1).float())

    def forward(self, inputs):
        x = inputs.flip(1) if self.flip else inputs
        return (x - self.mean) / self.std
