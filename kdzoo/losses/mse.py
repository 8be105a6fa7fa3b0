"""MSE feature hint (FitNet).

Paper: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015, arXiv:1412.6550.

Formula: ``MSE = mean_{b,c,h,w} (s - t)²`` on maps pooled to the smaller grid, or
``mean_{b,c} (s - t)²`` on feature vectors.

Defaults: none. Inputs: dense maps ``(B, C, H, W)``, or vectors ``(B, C)`` on both sides (pooled
features: the classifier's ``pre_logits`` readout, as timm's ``FeatureDistillationTask``
distils them), of equal width (the FitNet regressor is a connector, e.g. ``Projector``, in the
config item).
"""
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import dense_pair
from kdzoo.registry import MODELS

NAME = 'MSELoss'


def mse_loss(student, teacher):
    """Mean squared error of two aligned float32 maps or vectors."""
    return F.mse_loss(student, teacher)


def vector_pair(student, teacher):
    """Check two ``(B, C)`` feature vectors: float32 ``(student, teacher.detach())``."""
    if student.shape != teacher.shape:
        raise ValueError(
            f'{NAME}: feature vectors differ in shape: student {tuple(student.shape)} vs teacher '
            f'{tuple(teacher.shape)}; unequal widths need a connector, e.g. '
            f"connectors=dict(proj=dict(type='Projector', in_channels={student.shape[1]}, "
            f"out_channels={teacher.shape[1]}, norm=False)) and connector='proj'")
    return student.float(), teacher.detach().float()


@MODELS.register_module()
class MSELoss(nn.Module):
    """FitNet hint: mean squared error between student and teacher maps (or feature vectors)."""

    def forward(self, student, teacher, **ctx):
        if student.dim() == 2 and teacher.dim() == 2:
            return mse_loss(*vector_pair(student, teacher))
        return mse_loss(*dense_pair(student, teacher, NAME))
