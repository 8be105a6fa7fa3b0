"""kdzoo's DFRA equals the released code's computation (Ethan-Yang02/MLDR-KD, mldr_kd/dfra.py):
relation matrices normalised over dim -2, element-wise KL summed over the last dim, then the mean;
the probability term is KL(teacher ‖ student) with 'batchmean'. Restated here with plain torch."""
import pytest
import torch
import torch.nn.functional as F
from loss_checks import randn

from kdzoo.losses.dfra import DFRALoss


def release_relation_kl(student_relation, teacher_relation):
    log_p = F.log_softmax(student_relation, dim=-2)
    q = F.softmax(teacher_relation, dim=-2)
    return F.kl_div(log_p, q, reduction='none').sum(dim=-1).mean()


def release_dfra(student, teacher, temperature=1.0, alpha=2.0):
    s, t = student / temperature, teacher.detach() / temperature
    scale = s.shape[-1] ** -0.5
    class_s = s.unsqueeze(-1) @ s.unsqueeze(-2) * scale  # (N, K, K)
    class_t = t.unsqueeze(-1) @ t.unsqueeze(-2) * scale
    by_class_s, by_class_t = s.t(), t.t()
    sample_s = by_class_s.unsqueeze(-1) @ by_class_s.unsqueeze(-2) * scale  # (K, N, N)
    sample_t = by_class_t.unsqueeze(-1) @ by_class_t.unsqueeze(-2) * scale
    probability = F.kl_div(F.log_softmax(s, -1), F.softmax(t, -1), reduction='batchmean')
    return (release_relation_kl(class_s, class_t) + release_relation_kl(sample_s, sample_t)
            + alpha * probability)


@pytest.mark.parametrize('tau, alpha', [(1.0, 2.0), (4.0, 0.5)])
@pytest.mark.parametrize('n, k', [(8, 100), (3, 7)])
def test_value_and_gradient_equal_the_release(tau, alpha, n, k):
    student = randn(n, k, seed=1, scale=3).requires_grad_(True)
    teacher = randn(n, k, seed=2, scale=4)
    ours = DFRALoss(tau=tau, alpha=alpha)(student, teacher)
    grad, = torch.autograd.grad(ours, student)
    reference = release_dfra(student, teacher, tau, alpha)
    ref_grad, = torch.autograd.grad(reference, student)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-7)
