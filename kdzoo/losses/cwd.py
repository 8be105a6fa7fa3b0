"""CWD: channel-wise distillation.

Paper: Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021,
arXiv:2011.13256.

Formula: every channel ``c`` of image ``b`` becomes a distribution over its ``H·W`` locations,
``p_bc = softmax(x_bc / tau)``; ::

    CWD = tau² / (B·C) · Σ_{b,c} KL(p^t_bc ‖ p^s_bc)

(KL summed over locations, mean over channels and images: mmrazor's ``ChannelWiseDivergence``
normalisation, ``sum / (C·N)``). Defaults: ``tau=1.0``. Inputs: dense maps ``(B, C, H, W)`` of
equal width, pooled to the smaller grid.
"""
from torch import nn

from kdzoo.losses.functional import check_temperature, dense_pair, soft_kl
from kdzoo.registry import MODELS


def cwd_loss(student, teacher, tau=1.0):
    """``tau² · mean_{b,c} KL`` of the per-channel spatial softmaxes."""
    rows = student.shape[0] * student.shape[1]
    return tau ** 2 * soft_kl(student.reshape(rows, -1), teacher.reshape(rows, -1), tau).mean()


@MODELS.register_module()
class CWDLoss(nn.Module):
    """Channel-wise distillation (Shu et al. 2021): spatial softmax per channel, KL, ``× tau²``."""

    def __init__(self, tau=1.0):
        super().__init__()
        self.tau = check_temperature(tau, 'CWDLoss', 'the spatial softmax temperature', 1.0)

    def forward(self, student, teacher, **ctx):
        student, teacher = dense_pair(student, teacher, 'CWDLoss')
        return cwd_loss(student, teacher, self.tau)
