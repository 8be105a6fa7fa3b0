"""DKD: Decoupled Knowledge Distillation.

Paper: Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation", CVPR 2022,
arXiv:2203.08679 (official code: mdistiller).

KD is split at the label ``y`` of each sample, with ``p = softmax(z / tau)``:

- TCKD, target class: ``KL([p_t,y, 1 − p_t,y] ‖ [p_s,y, 1 − p_s,y])`` (binary);
- NCKD, non-target classes: ``KL(p̂_t ‖ p̂_s)``, ``p̂ = softmax`` over the classes ``c ≠ y``;

``DKD = tau² · mean_n (alpha · TCKD + beta · NCKD)``.

Everything is computed in log space:
``log(1 − p_y) = logsumexp_{c≠y} z_c/tau − logsumexp_c z_c/tau`` and ``log p̂`` is a log-softmax
over the non-target logits only (they are gathered, not masked), so no ``log 0`` or
``0 · (−inf)`` can occur — mdistiller's original masking gave NaN for 2 classes and saturated
logits. With 2 classes the non-target distribution has one class and NCKD is exactly 0.

Defaults: ``alpha=1.0, beta=8.0, tau=4.0``. Inputs: logits ``(B, K)`` or dense logit maps
``(B, K, H, W)``, ``K >= 2``, and ``target`` ``(B,)`` or ``(B, H, W)``; samples labelled
``ignore_index`` are skipped (the student's own, passed by the segmentation adapter; 255 by
default).
"""
import torch
from torch import nn

from kdzoo.losses.functional import check_temperature, labelled_pair, soft_kl, weighted_mean
from kdzoo.registry import MODELS


def decouple(logits, target):
    """Split ``(N, K)`` logits at ``target``.

    Returns ``log [p_y, 1 − p_y]`` ``(N, 2)`` and the non-target logits ``(N, K − 1)`` (in class
    order; gathered by index, so nothing is read on the host).
    """
    n, k = logits.shape
    rest = torch.arange(k - 1, device=logits.device).expand(n, k - 1)
    other = logits.gather(1, rest + (rest >= target[:, None]))
    log_norm = logits.logsumexp(1)
    own = logits.gather(1, target[:, None])[:, 0]
    log_binary = torch.stack([own - log_norm, other.logsumexp(1) - log_norm], dim=1)
    return log_binary, other


def dkd_loss(student, teacher, target, alpha=1.0, beta=8.0, tau=4.0, weight=None):
    """``tau² · mean_n (alpha · TCKD + beta · NCKD)`` of ``(N, K)`` logits and ``(N,)`` labels; with
    ``weight`` ``(N,)`` (0 for ignored samples) the mean over the samples of weight 1."""
    binary_s, other_s = decouple(student / tau, target)
    binary_t, other_t = decouple(teacher / tau, target)
    tckd = soft_kl(binary_s, binary_t, 1.0)  # log-probabilities are their own logits
    nckd = soft_kl(other_s, other_t, 1.0)
    weight = torch.ones_like(tckd) if weight is None else weight
    return tau ** 2 * weighted_mean(alpha * tckd + beta * nckd, weight)


@MODELS.register_module()
class DKDLoss(nn.Module):
    """Decoupled KD (Zhao et al., CVPR 2022): ``tau² (alpha TCKD + beta NCKD)``; needs
    ``target``."""

    requires_target = True  # adapters refuse it where no label per sample exists (detection)

    def __init__(self, alpha=1.0, beta=8.0, tau=4.0):
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.tau = check_temperature(tau, 'DKDLoss', 'the softmax temperature', 4.0)

    def forward(self, student, teacher, target=None, ignore_index=255, checks=None, **ctx):
        if student.dim() >= 2 and student.shape[1] < 2:
            raise ValueError('DKDLoss: needs at least 2 classes, got student '
                             f'{tuple(student.shape)} and teacher {tuple(teacher.shape)}')
        student, teacher, target, weight = labelled_pair(
            student, teacher, target, 'DKDLoss', ignore_index=ignore_index, checks=checks)
        return dkd_loss(student, teacher, target, self.alpha, self.beta, self.tau, weight)
