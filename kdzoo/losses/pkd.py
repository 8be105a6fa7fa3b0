"""PKD: distillation via the Pearson correlation coefficient.

Paper: Cao et al., "PKD: General Distillation Framework for Object Detectors via Pearson
Correlation Coefficient", NeurIPS 2022, arXiv:2207.02039.

Formula: standardise every channel over the batch and the locations ``(B, H, W)`` (mmrazor's and
mmdet's ``PKDLoss``: unbiased std, ``+1e-6``), then ::

    PKD = mean_{b,c,h,w} (ŝ − t̂)² / 2        ŝ_c = (s_c − mean(s_c)) / (std(s_c) + 1e-6)

which equals ``1 − r`` for the Pearson correlation ``r`` of each channel (averaged over channels).
Defaults: none. Inputs: dense maps ``(B, C, H, W)`` of equal width, pooled to the smaller grid.
A channel with a single value (``B·H·W = 1``) has std 0 and standardises to 0.
"""
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import dense_pair
from kdzoo.registry import MODELS


def standardize_channels(x):
    """``(B, C, H, W)`` -> ``(C, B·H·W)``: every channel with zero mean and unit (unbiased) std."""
    x = x.transpose(0, 1).flatten(1)
    std = x.std(dim=1, correction=1 if x.shape[1] > 1 else 0, keepdim=True)
    return (x - x.mean(dim=1, keepdim=True)) / (std + 1e-6)


def pkd_loss(student, teacher):
    """Half the mean squared difference of the channel-standardised maps."""
    return F.mse_loss(standardize_channels(student), standardize_channels(teacher)) / 2


@MODELS.register_module()
class PKDLoss(nn.Module):
    """PKD (Cao et al. 2022): MSE between channel-standardised maps, divided by 2."""

    def forward(self, student, teacher, **ctx):
        return pkd_loss(*dense_pair(student, teacher, 'PKDLoss'))
