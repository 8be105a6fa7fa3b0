"""Checks every logit loss test runs (importable as ``logit_loss_checks``: pytest puts this
folder on sys.path). Each takes the loss module and extra forward kwargs such as ``target``."""
import pytest
import torch

from kdzoo.registry import build


def randn(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def check_builds(name):
    """Builds from the registry with defaults, bare and scoped names, and holds no parameters."""
    for type_name in (name, f'kdzoo.{name}'):
        loss = build(dict(type=type_name))
        assert type(loss).__name__ == name
        assert len(list(loss.parameters())) == 0


def check_student_only_gradient(loss, student, teacher, **ctx):
    """Backward reaches the student (finite, non-zero) and never the teacher."""
    student = student.clone().requires_grad_(True)
    teacher = teacher.clone().requires_grad_(True)
    out = loss(student, teacher, **ctx)
    out.backward()
    assert out.dim() == 0 and out.dtype == torch.float32
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    assert teacher.grad is None


def check_low_precision(loss, student, teacher, **ctx):
    """bf16/fp16 inputs give a float32 result equal to the float32 loss of the rounded inputs and
    close to the float32 loss of the originals."""
    reference = loss(student, teacher, **ctx)
    for dtype in (torch.bfloat16, torch.float16):
        s, t = student.to(dtype), teacher.to(dtype)
        out = loss(s, t, **ctx)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, loss(s.float(), t.float(), **ctx))
        torch.testing.assert_close(out, reference, rtol=5e-2, atol=5e-3)


def check_bad_shapes(loss, name, **ctx):
    """Wrong class count and wrong dims raise ValueErrors naming the loss and both shapes."""
    with pytest.raises(ValueError, match=rf'{name}.*\(4, 5\).*\(4, 6\)'):
        loss(randn(4, 5), randn(4, 6), **ctx)
    with pytest.raises(ValueError, match=rf'{name}.*\(4, 5, 3\).*\(4, 5, 3\)'):
        loss(randn(4, 5, 3), randn(4, 5, 3), **ctx)


def check_contract(name, student, teacher, **ctx):
    """All of the above for the loss ``name`` built with default arguments."""
    check_builds(name)
    loss = build(dict(type=name))
    check_student_only_gradient(loss, student, teacher, **ctx)
    check_low_precision(loss, student, teacher, **ctx)
    check_bad_shapes(loss, name, **ctx)
