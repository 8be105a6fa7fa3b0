"""AT: attention transfer.

Paper: Zagoruyko & Komodakis, "Paying More Attention to Attention: Improving the Performance of
Convolutional Neural Networks via Attention Transfer", ICLR 2017, arXiv:1612.03928.

Formula, with the spatial attention ``a(x) = normalize(vec(mean_c |x_c|^p))`` (L2 over the
``H·W`` locations)::

    AT = mean_{b,j} (a(s)_bj − a(t)_bj)²

This is the official code's ``(at(x) - at(y)).pow(2).mean()``; the paper's ``β/2`` (β = 1000)
belongs in the item's weight. Defaults: ``p=2``. Inputs: dense maps ``(B, C, H, W)``; the channel
widths may differ (the attention map is channel-free); grids are pooled to the smaller one.
"""
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import dense_pair
from kdzoo.registry import MODELS


def attention_map(x, p=2):
    """``(B, C, H, W)`` -> ``(B, H·W)``: mean over channels of ``|x|^p``, L2-normalised."""
    return F.normalize(x.abs().pow(p).mean(1).flatten(1), dim=1)


def at_loss(student, teacher, p=2):
    """Mean squared difference of the two attention maps."""
    return (attention_map(student, p) - attention_map(teacher, p)).pow(2).mean()


@MODELS.register_module()
class ATLoss(nn.Module):
    """Attention transfer (Zagoruyko & Komodakis 2017) with attention ``mean_c |x|^p``."""

    def __init__(self, p=2):
        super().__init__()
        self.p = p

    def forward(self, student, teacher, **ctx):
        student, teacher = dense_pair(student, teacher, 'ATLoss', check_channels=False)
        return at_loss(student, teacher, self.p)
