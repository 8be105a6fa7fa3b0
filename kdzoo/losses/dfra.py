"""DFRA: Decoupled Finegrained Relation Alignment, the parameter-free loss of MLDR-KD.

Paper: "Multi-Level Decoupled Relational Distillation for Heterogeneous Architectures",
arXiv:2502.06189. Formula of the first author's released code, Ethan-Yang02/MLDR-KD
``mldr_kd/dfra.py`` (``DFRALoss``, ``temperature=1.0, alpha=2.0``), read and checked: this module
gives the same value and gradient (``tests/losses/test_dfra_release.py`` restates the release's
computation and compares). The release normalises its relation matrices over ``dim=-2`` (columns)
and sums the element-wise KL over the last dimension before the mean; the relations are
symmetric (``x xᵀ``), so that is the row formula below with the same ``1/(N K)`` normalisation.

With ``a = z_s / tau``, ``b = z_t / tau`` ``(N, K)`` and
``KL(q ‖ p) = Σ_j q_j (log q_j − log p_j)``:

- class-wise relation per sample ``n``: ``R_n = a_n a_nᵀ / √K`` ``(K × K)``, row softmax;
  ``L_class = 1/(N K) Σ_n Σ_i KL(softmax(R^t_n[i]) ‖ softmax(R^s_n[i]))``;
- sample-wise relation per class ``k``: ``G_k = a_{:,k} a_{:,k}ᵀ / √K`` ``(N × N)`` (√K, not √N),
  row softmax; ``L_sample = 1/(K N) Σ_k Σ_i KL(softmax(G^t_k[i]) ‖ softmax(G^s_k[i]))``;
- ``L_kl = mean_n KL(softmax(b_n) ‖ softmax(a_n))``;
- ``DFRA = L_class + L_sample + alpha · L_kl`` (no ``tau²`` factor).

Memory. A direct implementation materialises ``(N, K, K)`` and ``(K, N, N)`` relation tensors
(N=256, K=1000: 256 M elements each, several times, plus autograd's saved copies). Both terms are
the same operation — for each row vector ``x`` of ``X (M, D)``, the row KLs of the outer product
``x xᵀ / √K`` — on ``a`` (``M = N``) and on ``aᵀ`` (``M = K``). :class:`RelationKL` computes it
``chunk_size`` relation rows at a time, i.e. ``O(N · K · chunk_size)`` elements per chunk, and
computes the gradient in the same pass: for one outer product ``S = c · x xᵀ`` with row softmaxes
``P`` (student) and ``Q`` (teacher), ``∂ Σ_i KL(Q_i ‖ P_i) / ∂S = P − Q =: Δ``, so
``∂/∂x = c (Δ x + Δᵀ x)``, which accumulates chunk by chunk into a ``(M, D)`` tensor. Backward is
then a multiplication by the incoming gradient: nothing of relation size is saved or rebuilt, and
the relation tensors are built once (not twice, as with recomputation in backward). The gradient is
computed only when grad mode is on and the student requires it; double backward is not supported.

Dense logit maps ``(B, K, H, W)``: every location is a sample; when there are more than
``max_samples`` locations, ``max_samples`` of them are drawn without replacement with
``torch.randperm`` from the current (global, or ``torch.manual_seed``-seeded) RNG of the logits'
device — the same locations for teacher and student. The sample-wise relation is then among those
locations.

Defaults: ``tau=1.0, alpha=2.0, max_samples=4096, chunk_size=32`` (``None``: all rows in one chunk,
fastest and as memory-hungry as the direct formula). Inputs: logits ``(B, K)`` or dense logit maps.
"""
import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from kdzoo.losses.functional import check_temperature, logit_pair, soft_kl
from kdzoo.registry import MODELS


def relation_kl_sum(x_s, x_t, scale, chunk_size=32, need_grad=False):
    """``Σ_m Σ_i KL(softmax_j(scale x_t[m,i] x_t[m,j]) ‖ softmax_j(scale x_s[m,i] x_s[m,j]))``.

    ``x_s, x_t (M, D)``; rows ``i`` are processed ``chunk_size`` at a time (``(M, chunk, D)``
    intermediates). Returns ``(sum as float64 scalar, d sum / d x_s or None)``.
    """
    m, d = x_s.shape
    step = d if chunk_size is None else max(1, int(chunk_size))
    total = torch.zeros((), dtype=torch.float64, device=x_s.device)
    grad = torch.zeros_like(x_s) if need_grad else None
    for start in range(0, d, step):
        rows = slice(start, start + step)
        log_q = torch.log_softmax(scale * x_t[:, rows, None] * x_t[:, None, :], dim=-1)
        log_p = torch.log_softmax(scale * x_s[:, rows, None] * x_s[:, None, :], dim=-1)
        q = log_q.exp()
        total += log_q.sub_(log_p).mul_(q).sum(dtype=torch.float64)
        del log_q
        if need_grad:
            delta = log_p.exp_().sub_(q)  # P − Q = d KL / d relation logits, rows `rows`
            grad[:, rows] += torch.bmm(delta, x_s[:, :, None]).squeeze(-1)
            grad += torch.bmm(x_s[:, None, rows], delta).squeeze(1)
    if need_grad:
        grad.mul_(scale)
    return total, grad


class RelationKL(torch.autograd.Function):
    """Autograd wrapper of :func:`relation_kl_sum`: gradient computed in the forward chunks, saved
    as one ``(M, D)`` tensor; the teacher gets no gradient."""

    @staticmethod
    def forward(ctx, x_s, x_t, scale, chunk_size, need_grad):
        total, grad = relation_kl_sum(x_s, x_t, scale, chunk_size, need_grad)
        ctx.save_for_backward(grad)
        return total.to(x_s.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        grad, = ctx.saved_tensors
        return grad * grad_output, None, None, None, None


def relation_kl(x_s, x_t, scale, chunk_size=32):
    """Differentiable (w.r.t. ``x_s``) :func:`relation_kl_sum`, memory ``O(M · D · chunk_size)``."""
    need_grad = torch.is_grad_enabled() and x_s.requires_grad
    return RelationKL.apply(x_s, x_t.detach(), scale, chunk_size, need_grad)


def dfra_loss(student, teacher, tau=1.0, alpha=2.0, chunk_size=32):
    """DFRA of ``(N, K)`` logits: ``L_class + L_sample + alpha · L_kl`` (module docstring)."""
    a, b = student / tau, teacher / tau
    n, k = a.shape
    scale = 1 / math.sqrt(k)
    class_wise = relation_kl(a, b, scale, chunk_size) / (n * k)
    sample_wise = relation_kl(a.t().contiguous(), b.t().contiguous(), scale, chunk_size) / (k * n)
    return class_wise + sample_wise + alpha * soft_kl(a, b, 1.0).mean()


def subsample(student, teacher, max_samples):
    """At most ``max_samples`` rows of ``(N, K)`` samples, the same rows on both sides (``randperm``
    from the current RNG); all rows when ``N <= max_samples`` or ``max_samples`` is None."""
    if max_samples is None or student.shape[0] <= max_samples:
        return student, teacher
    keep = torch.randperm(student.shape[0], device=student.device)[:max_samples]
    return student[keep], teacher[keep]


@MODELS.register_module()
class DFRALoss(nn.Module):
    """MLDR-KD's Decoupled Finegrained Relation Alignment, chunked (see the module docstring).

    Args:
        tau: temperature dividing both logits.
        alpha: weight of the plain KL term.
        max_samples: most locations used from dense logit maps (random, same for both sides).
        chunk_size: relation rows per chunk (``None``: one chunk).
    """

    def __init__(self, tau=1.0, alpha=2.0, max_samples=4096, chunk_size=32):
        super().__init__()
        self.tau = check_temperature(tau, 'DFRALoss', 'the softmax temperature', 1.0)
        self.alpha = alpha
        self.max_samples = max_samples
        self.chunk_size = chunk_size

    def forward(self, student, teacher, **ctx):
        student, teacher = logit_pair(student, teacher, 'DFRALoss')
        student, teacher = subsample(student, teacher, self.max_samples)
        return dfra_loss(student, teacher, self.tau, self.alpha, self.chunk_size)
