"""KD: the classic soft-target loss.

Paper: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", NIPS 2014 Deep
Learning Workshop, arXiv:1503.02531.

Formula, per sample ``n`` with ``p = softmax(z / tau)``::

    KD = tau² · mean_n KL(p_t,n ‖ p_s,n) = tau² · mean_n Σ_c p_t,nc (log p_t,nc − log p_s,nc)

Defaults: ``tau=4.0``. Inputs: logits ``(B, K)`` or dense logit maps ``(B, K, H, W)`` (every
location is a sample; maps of different size are resized bilinearly to the smaller grid).
"""

from torch import nn

from kdzoo.losses.functional import check_temperature, logit_pair, soft_kl
from kdzoo.registry import MODELS


def kd_loss(student, teacher, tau=4.0):
    """``tau² · mean_n KL(softmax(teacher/tau) ‖ softmax(student/tau))`` over ``(N, K)`` samples."""
    return tau ** 2 * soft_kl(student, teacher, tau).mean()


@MODELS.register_module()
class KDLoss(nn.Module):
    """Soft-target KD (Hinton et al. 2015): ``tau² · KL(p_t ‖ p_s)``, batch mean."""

    def __init__(self, tau=4.0):
        super().__init__()
        self.tau = check_temperature(tau, 'KDLoss', 'the softmax temperature', 4.0)

    def forward(self, student, teacher, **ctx):
        student, teacher = logit_pair(student, teacher, 'KDLoss')
        return kd_loss(student, teacher, self.tau)
