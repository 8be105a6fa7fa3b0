"""OFA: the One-for-All KD logit loss with an adaptive target.

Paper: Hao, Guo, Han, Xu, Wang, "One-for-All: Bridge the Gap Between Heterogeneous Architectures
in Knowledge Distillation", NeurIPS 2023, arXiv:2310.19444.

Formula (as the official code, github.com/Hao840/OFAKD ``ofa_loss``), with
``p = softmax(z / tau)`` on both sides and ``y`` the one-hot label::

    OFA = mean_n −Σ_c [(p_t,nc + y_nc)^eps − y_nc] · log p_s,nc

For ``eps = 1`` the weights are ``p_t`` (the label cancels): cross-entropy to the teacher, i.e. KD
without ``tau²`` plus the teacher's entropy, minimal at ``p_s = p_t``. For ``eps > 1`` the target
weight ``(1 + p_t,y)^eps − 1`` exceeds ``p_t,y``, more so when the teacher is unsure of the target;
the optimum is ``p_s ∝`` the weights. No ``tau²`` factor (the official code has none). We use
``log_softmax`` where the official code takes ``log(softmax)``: the same value, finite when a
probability underflows.

Defaults: ``eps=1.0, tau=1.0``. Inputs: logits ``(B, K)`` or dense logit maps ``(B, K, H, W)``,
and ``target``: ``(B,)`` labels (repeated per location) or ``(B, H, W)`` label maps; samples
labelled ``ignore_index`` are skipped (the student's own, passed by the segmentation adapter; 255
by default).
"""
import torch
import torch.nn.functional as F
from torch import nn

from kdzoo.losses.functional import check_temperature, labelled_pair, weighted_mean
from kdzoo.registry import MODELS


def ofa_loss(student, teacher, target, eps=1.0, tau=1.0, weight=None):
    """OFA loss of ``(N, K)`` logits and ``(N,)`` labels, mean over samples (0 when ``N = 0``); with
    ``weight`` ``(N,)`` (0 for ignored samples) the mean over the samples of weight 1."""
    onehot = F.one_hot(target, student.shape[1]).to(student)
    p_t = F.softmax(teacher / tau, dim=1)
    coefficient = (p_t + onehot) ** eps - onehot
    per_sample = -(coefficient * F.log_softmax(student / tau, dim=1)).sum(1)
    weight = torch.ones_like(per_sample) if weight is None else weight
    return weighted_mean(per_sample, weight)


@MODELS.register_module()
class OFALoss(nn.Module):
    """One-for-All KD loss (Hao et al., NeurIPS 2023); needs ``target``."""

    requires_target = True  # adapters refuse it where no label per sample exists (detection)

    def __init__(self, eps=1.0, tau=1.0):
        super().__init__()
        self.eps = eps
        self.tau = check_temperature(tau, 'OFALoss', 'the softmax temperature', 1.0)

    def forward(self, student, teacher, target=None, ignore_index=255, checks=None, **ctx):
        student, teacher, target, weight = labelled_pair(
            student, teacher, target, 'OFALoss', ignore_index=ignore_index, checks=checks)
        return ofa_loss(student, teacher, target, self.eps, self.tau, weight)
