"""DIST: distillation from a stronger teacher by correlation of predictions.

Paper: Huang, You, Wang, Qian, Xu, "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022,
arXiv:2205.10536 (official code: github.com/hunto/DIST_KD and image_classification_sota).

With ``Y = softmax(Z / tau)`` row-wise, ``(N, K)`` on both sides, and ``ρ`` the Pearson correlation
``ρ(u, v) = <u − ū, v − v̄> / (‖u − ū‖ ‖v − v̄‖ + 1e-8)``::

    inter = 1 − mean_n ρ(Y_s[n, :], Y_t[n, :])      (each sample's class distribution)
    intra = 1 − mean_c ρ(Y_s[:, c], Y_t[:, c])      (each class across the batch)
    DIST  = tau² · (beta · inter + gamma · intra)

The ``tau²`` factor and the ``1e-8`` follow the official classification code (``dist_kd.py``,
also in the OFA-KD repository), which multiplies both terms by ``tau²``; with the default
``tau = 1`` it is 1. A constant row or column (e.g. batch of 1 for the intra term) has correlation
0 there, so the term is 1 — finite, as in the official code.

Defaults: ``beta=1.0, gamma=1.0, tau=1.0``. Inputs: logits ``(B, K)`` or dense logit maps
``(B, K, H, W)`` (every location a sample, as the official segmentation variant does).
"""
from torch import nn

from kdzoo.losses.functional import check_temperature, logit_pair
from kdzoo.registry import MODELS


def pearson_rows(x, y, eps=1e-8):
    """Pearson correlation of matching rows of ``x`` and ``y`` ``(N, D)`` -> ``(N,)``."""
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    return (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1) + eps)


def dist_loss(student, teacher, beta=1.0, gamma=1.0, tau=1.0):
    """DIST of ``(N, K)`` logits: ``tau² (beta (1 − ρ_rows) + gamma (1 − ρ_columns))``."""
    y_s = (student / tau).softmax(1)
    y_t = (teacher / tau).softmax(1)
    inter = 1 - pearson_rows(y_s, y_t).mean()
    intra = 1 - pearson_rows(y_s.t(), y_t.t()).mean()
    return tau ** 2 * (beta * inter + gamma * intra)


@MODELS.register_module()
class DISTLoss(nn.Module):
    """DIST (Huang et al., NeurIPS 2022): inter- and intra-class Pearson correlation, ``× tau²``."""

    def __init__(self, beta=1.0, gamma=1.0, tau=1.0):
        super().__init__()
        self.beta = beta
        self.gamma = gamma
        self.tau = check_temperature(tau, 'DISTLoss', 'the softmax temperature', 1.0)

    def forward(self, student, teacher, **ctx):
        student, teacher = logit_pair(student, teacher, 'DISTLoss')
        return dist_loss(student, teacher, self.beta, self.gamma, self.tau)
