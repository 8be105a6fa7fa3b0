"""KD: the classic soft-target loss.

Paper: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", NIPS 2014 Deep
Learning Workshop, arXiv:1503.02531.

Formula, per sample ``n`` with ``p = softmax(z / tau)``::

    KD = tau² · mean_n KL(p_t,n ‖ p_s,n) = tau² · mean_n Σ_c p_t,nc (log p_t,nc − log p_s,nc)

``sigmoid=True``, for classifiers that score every class on its own with a sigmoid (the dense
heads of RetinaNet, FCOS, ATSS, GFL; an RPN's objectness): every logit is a binary
probability ``q = sigmoid(z / tau)``, and the KL of the two Bernoulli distributions is summed
over the channels (every anchor's every class) instead of one softmax over them::

    KD_sigmoid = tau² · mean_n Σ_c [q_t,nc (log q_t,nc − log q_s,nc)
                                     + (1 − q_t,nc) (log(1 − q_t,nc) − log(1 − q_s,nc))]

(a softmax over the ``A·K`` channels of such a head's class map would compare one distribution
over anchors and classes together, which neither head predicts; docs/distill_cfg.md).

Defaults: ``tau=4.0, sigmoid=False``. Inputs: logits ``(B, K)`` or dense logit maps
``(B, K, H, W)`` (every location is a sample; maps of different size are resized bilinearly to
the smaller grid).
"""
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import check_temperature, logit_pair, soft_kl
from kdzoo.registry import MODELS


def kd_loss(student, teacher, tau=4.0):
    """``tau² · mean_n KL(softmax(teacher/tau) ‖ softmax(student/tau))`` over ``(N, K)`` samples."""
    return tau ** 2 * soft_kl(student, teacher, tau).mean()


def sigmoid_kd_loss(student, teacher, tau=4.0):
    """``tau² · mean_n Σ_c KL(Bernoulli(sigmoid(t/tau)) ‖ Bernoulli(sigmoid(s/tau)))`` over
    ``(N, K)`` samples, from log-sigmoids (finite for saturated logits)."""
    log_q_t, log_r_t = F.logsigmoid(teacher / tau), F.logsigmoid(-teacher / tau)
    log_q_s, log_r_s = F.logsigmoid(student / tau), F.logsigmoid(-student / tau)
    kl = log_q_t.exp() * (log_q_t - log_q_s) + log_r_t.exp() * (log_r_t - log_r_s)
    return tau ** 2 * kl.sum(-1).mean()


@MODELS.register_module()
class KDLoss(nn.Module):
    """Soft-target KD (Hinton et al. 2015): ``tau² · KL(p_t ‖ p_s)``, batch mean; with
    ``sigmoid=True`` the binary KL of every class (sigmoid classifiers' dense scores)."""

    def __init__(self, tau=4.0, sigmoid=False):
        super().__init__()
        self.tau = check_temperature(tau, 'KDLoss', 'the softmax temperature', 4.0)
        if not isinstance(sigmoid, bool):
            raise ValueError(f'KDLoss: sigmoid must be True or False, got {sigmoid!r}')
        self.sigmoid = sigmoid

    def forward(self, student, teacher, **ctx):
        student, teacher = logit_pair(student, teacher, 'KDLoss')
        if self.sigmoid:
            return sigmoid_kd_loss(student, teacher, self.tau)
        return kd_loss(student, teacher, self.tau)
