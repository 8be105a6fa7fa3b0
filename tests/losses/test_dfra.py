import math

import pytest
import torch
from loss_checks import as_rows, check_contract, check_student_only_gradient, randn
from torch.utils._python_dispatch import TorchDispatchMode

from kdzoo.losses.dfra import DFRALoss, dfra_loss


def row_kl(student_logits, teacher_logits):
    """KL(softmax(teacher) ‖ softmax(student)) of every row (last dim)."""
    log_q, log_p = teacher_logits.log_softmax(-1), student_logits.log_softmax(-1)
    return (log_q.exp() * (log_q - log_p)).sum(-1)


def direct_dfra(student, teacher, tau=1.0, alpha=2.0):
    """The DFRA formula (docs/losses.md, arXiv 2502.06189) with the full (B, K, K) and (K, B, B)
    relation tensors."""
    a, b = student / tau, teacher / tau
    k = a.shape[1]
    class_s = torch.einsum('bi,bj->bij', a, a) / math.sqrt(k)  # R_b, (B, K, K)
    class_t = torch.einsum('bi,bj->bij', b, b) / math.sqrt(k)
    sample_s = torch.einsum('ik,jk->kij', a, a) / math.sqrt(k)  # G_k, (K, B, B), √K not √B
    sample_t = torch.einsum('ik,jk->kij', b, b) / math.sqrt(k)
    return (row_kl(class_s, class_t).mean() + row_kl(sample_s, sample_t).mean()
            + alpha * row_kl(a, b).mean())


def value_and_grad(fn, student, teacher):
    student = student.clone().requires_grad_(True)
    value = fn(student, teacher)
    grad, = torch.autograd.grad(value, student)
    return value, grad


@pytest.mark.parametrize('chunk_size', [1, 3, 32, None])
def test_equals_direct_formula_value_and_gradient(chunk_size):
    s, t = randn(6, 10, seed=1, scale=2), randn(6, 10, seed=2, scale=3)
    for tau, alpha in ((1.0, 2.0), (2.0, 0.5)):
        loss = DFRALoss(tau, alpha, chunk_size=chunk_size)
        value, grad = value_and_grad(loss, s, t)
        ref_value, ref_grad = value_and_grad(lambda x, y: direct_dfra(x, y, tau, alpha), s, t)
        torch.testing.assert_close(value, ref_value, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-5)


def test_gradcheck_float64():
    s = randn(3, 5, seed=1).double().requires_grad_(True)
    t = randn(3, 5, seed=2).double()
    assert torch.autograd.gradcheck(lambda x: dfra_loss(x, t, chunk_size=2), (s,))


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any op produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for x in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(x, torch.Tensor):
                self.numel = max(self.numel, x.numel())
        return out


def test_never_builds_more_than_a_chunk_in_forward_or_backward():
    b, k, chunk = 12, 40, 4
    s = randn(b, k, seed=1).requires_grad_(True)
    saved = []
    with LargestTensor() as largest, torch.autograd.graph.saved_tensors_hooks(
            lambda x: saved.append(x.numel()) or x, lambda x: x):
        DFRALoss(chunk_size=chunk)(s, randn(b, k, seed=2)).backward()
    assert largest.numel <= b * k * chunk < b * k * k
    assert max(saved) <= b * k  # autograd keeps nothing of relation size for backward


def test_zero_when_equal_and_edge_cases():
    s = randn(4, 6)
    assert abs(DFRALoss()(s, s.clone()).item()) < 1e-6
    assert DFRALoss()(s, randn(4, 6, seed=3)).item() > 1e-3
    one, other = randn(1, 6), randn(1, 6, seed=5)  # batch 1: the 1x1 sample relations give 0
    torch.testing.assert_close(DFRALoss()(one, other), direct_dfra(one, other))
    flat = torch.zeros(2, 6)  # all-equal logits
    torch.testing.assert_close(DFRALoss()(flat, flat), torch.tensor(0.0))
    check_student_only_gradient(DFRALoss(), flat, randn(2, 6))
    two_s, two_t = randn(3, 2, seed=1), randn(3, 2, seed=2)  # 2 classes
    torch.testing.assert_close(DFRALoss()(two_s, two_t), direct_dfra(two_s, two_t))


def test_dense_maps_every_location_is_a_sample():
    s, t = randn(2, 5, 3, 3, seed=1), randn(2, 5, 3, 3, seed=2)
    torch.testing.assert_close(DFRALoss()(s, t), direct_dfra(as_rows(s), as_rows(t)))


def test_dense_maps_sample_at_most_max_samples_same_locations():
    s, t = randn(2, 5, 4, 4, seed=1), randn(2, 5, 4, 4, seed=2)
    flat_s, flat_t = as_rows(s), as_rows(t)
    torch.manual_seed(7)
    got = DFRALoss(max_samples=10)(s, t)
    torch.manual_seed(7)
    keep = torch.randperm(32)[:10]
    torch.testing.assert_close(got, direct_dfra(flat_s[keep], flat_t[keep]))
    assert not torch.allclose(got, direct_dfra(flat_s[:10], flat_t[keep]))  # pairing matters
    with LargestTensor() as largest:
        DFRALoss(max_samples=10, chunk_size=None)(s, t)
    assert largest.numel == 5 * 10 * 10  # the (K, N, N) relation with N = max_samples, not 32


def test_contract():
    s, t = randn(4, 5), randn(4, 5, seed=1)
    check_contract('DFRALoss', s, t)
    with torch.no_grad():  # no gradient work when grad mode is off
        assert DFRALoss()(s.requires_grad_(True), t).grad_fn is None
