"""MSE feature hint (FitNet).

Paper: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015, arXiv:1412.6550.

Formula: ``MSE = mean_{b,c,h,w} (s - t)²`` on maps pooled to the smaller grid.

Defaults: none. Inputs: dense maps ``(B, C, H, W)`` of equal width (the FitNet regressor is a
connector, e.g. ``Projector``, in the config item).
"""
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import dense_pair
from kdzoo.registry import MODELS


def mse_loss(student, teacher):
    """Mean squared error of two aligned float32 maps."""
    return F.mse_loss(student, teacher)


@MODELS.register_module()
class MSELoss(nn.Module):
    """FitNet hint: mean squared error between student and teacher maps."""

    def forward(self, student, teacher, **ctx):
        return mse_loss(*dense_pair(student, teacher, 'MSELoss'))
