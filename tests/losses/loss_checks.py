"""Inputs and checks shared by the loss tests, logit and dense (importable as ``loss_checks``:
pytest puts this folder on sys.path). Checks take the loss module and extra forward kwargs such
as ``target``."""
import pytest
import torch

from kdzoo import layout
from kdzoo.registry import build


def randn(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def as_rows(x):
    """A dense map ``(B, C, H, W)`` as ``(B·H·W, C)``: one row per location, row-major."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def pool2(x):
    """Means of the 2 x 2 blocks of a ``(B, C, H, W)`` map with even sides (14x14 -> 7x7)."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).mean((3, 5))


def vit_and_cnn_maps(batch, channels, grad=False):
    """A ViT's tokens ``(B, 1 + 14·14, C)`` (one prefix token, requiring grad if ``grad``), their
    14x14 map through ``kdzoo.layout.to_map``, and a CNN's 7x7 map ``(B, C, 7, 7)``."""
    tokens = randn(batch, 1 + 14 * 14, channels, seed=3).requires_grad_(grad)
    vit_map = layout.to_map(tokens, 'tokens', num_prefix_tokens=1)
    return tokens, vit_map, randn(batch, channels, 7, 7, seed=4)


def assert_matches_reference(value, expected):
    """A float32 loss equals its float64 reference formula to 1e-5."""
    torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=1e-5)


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


def check_gradient_and_precision(loss, student, teacher, **ctx):
    """:func:`check_student_only_gradient` and :func:`check_low_precision`."""
    check_student_only_gradient(loss, student, teacher, **ctx)
    check_low_precision(loss, student, teacher, **ctx)


def check_bad_shapes(loss, name, **ctx):
    """Wrong class count and wrong dims raise ValueErrors naming the loss and both shapes."""
    with pytest.raises(ValueError, match=rf'{name}.*\(4, 5\).*\(4, 6\)'):
        loss(randn(4, 5), randn(4, 6), **ctx)
    with pytest.raises(ValueError, match=rf'{name}.*\(4, 5, 3\).*\(4, 5, 3\)'):
        loss(randn(4, 5, 3), randn(4, 5, 3), **ctx)


def check_contract(name, student, teacher, **ctx):
    """All of the above for the logit loss ``name`` built with default arguments."""
    check_builds(name)
    loss = build(dict(type=name))
    check_gradient_and_precision(loss, student, teacher, **ctx)
    check_bad_shapes(loss, name, **ctx)


def check_dense_errors(loss, name, equal_widths=True):
    """Bad dense inputs raise ValueErrors naming the loss and the shapes: tokens ``(B, N, C)`` or
    a vector where a map belongs, different batch sizes and, where the loss needs equal widths,
    different widths (with a connector suggested)."""
    with pytest.raises(ValueError, match=rf'{name}: teacher must be a dense map.*\(2, 16, 3\)'):
        loss(randn(2, 3, 4, 4), randn(2, 16, 3))
    with pytest.raises(ValueError, match=rf'{name}: student must be a dense map.*\(2, 3\)'):
        loss(randn(2, 3), randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=rf'{name}: student and teacher batch sizes differ.*'
                                         r'\(2, 3, 4, 4\).*\(3, 3, 4, 4\)'):
        loss(randn(2, 3, 4, 4), randn(3, 3, 4, 4))
    if equal_widths:
        with pytest.raises(ValueError, match=rf'{name}: channel widths differ.*\(2, 3, 4, 4\).*'
                                             r'\(2, 5, 4, 4\).*connector'):
            loss(randn(2, 3, 4, 4), randn(2, 5, 4, 4))


def check_pools_larger_map(loss, reference, teacher_channels=3, **tolerance):
    """A 14x14 student map vs a 7x7 teacher map: the loss equals ``reference`` of the student's
    2 x 2 block means and the teacher (compared as floats with ``tolerance``)."""
    s, t = randn(2, 3, 14, 14, seed=1), randn(2, teacher_channels, 7, 7, seed=2)
    torch.testing.assert_close(float(loss(s, t)), float(reference(pool2(s), t)), **tolerance)


def check_vit_student_vs_cnn_teacher(loss, reference, batch, channels):
    """A ViT student map (14x14 tokens) vs a CNN teacher's 7x7 map: the loss equals the float64
    ``reference`` of the 2 x 2-pooled student map, and the gradient reaches the patch tokens and
    never the prefix token."""
    tokens, vit_map, cnn = vit_and_cnn_maps(batch, channels, grad=True)
    value = loss(vit_map, cnn)
    assert_matches_reference(value, reference(pool2(vit_map.detach()), cnn))
    value.backward()
    assert tokens.grad[:, 0].abs().sum() == 0 and tokens.grad[:, 1:].abs().sum() > 0
