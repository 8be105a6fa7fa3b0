import math

import pytest
import torch
import torch.nn.functional as F
from loss_checks import (
    assert_matches_reference,
    check_builds,
    check_dense_errors,
    check_gradient_and_precision,
    check_vit_student_vs_cnn_teacher,
    randn,
)

from kdzoo.losses.functional import sliding_windows
from kdzoo.losses.msdcrd import MSDCRDLoss


def windows_by_loop(x, grids):
    """Every window of every grid, by slicing: list of ``(scale, (B, C) mean)``."""
    height, width = x.shape[-2:]
    out = []
    for scale, g in enumerate(grids):
        kh, kw = math.ceil(height / g), math.ceil(width / g)
        for i in range(0, height - kh + 1, max(1, kh // 2)):
            for j in range(0, width - kw + 1, max(1, kw // 2)):
                out.append((scale, x[:, :, i:i + kh, j:j + kw].mean((2, 3))))
    return out


def nce(query, keys, positive, tau):
    logits = torch.stack([torch.cosine_similarity(query, k, dim=0) for k in keys]) / tau
    return torch.logsumexp(logits, 0) - logits[positive]


def msdcrd_by_loop(student, teacher, tau=0.1, grids=(1, 2, 4), w_sample=1.0, w_feature=1.0,
                   w_comp=2.0, target=None):
    """The whole loss, written out window by window and image by image (float64)."""
    student, teacher = student.double(), teacher.double()
    ws, wt = windows_by_loop(student, grids), windows_by_loop(teacher, grids)
    batch = student.shape[0]
    top = teacher.mean((2, 3)).argmax(1) if target is None else target

    def weight(r, b):
        return 1.0 if wt[r][1][b].argmax() == top[b] else w_comp

    num = den = 0.0
    for r in range(len(ws)):
        for b in range(batch):
            keys = [wt[r][1][j] for j in range(batch)]
            num = num + weight(r, b) * nce(ws[r][1][b], keys, b, tau)
            den += weight(r, b)
    sample = num / den
    num = den = 0.0
    for scale in range(len(grids)):
        rows = [r for r in range(len(ws)) if ws[r][0] == scale]
        if len(rows) < 2:
            continue
        for b in range(batch):
            keys = [wt[r][1][b] for r in rows]
            for pos, r in enumerate(rows):
                num = num + weight(r, b) * nce(ws[r][1][b], keys, pos, tau)
                den += weight(r, b)
    feature = num / den if den else 0.0
    return w_sample * sample + w_feature * feature


def test_window_count_and_positions():
    x = randn(2, 3, 7, 7)
    windows, counts = sliding_windows(x, (1, 2, 4))
    assert counts == (1, 2 * 2, 6 * 6)  # k = 7, 4, 2; strides 3, 2, 1
    looped = windows_by_loop(x, (1, 2, 4))
    torch.testing.assert_close(windows, torch.stack([w for _, w in looped]))
    assert sliding_windows(randn(1, 2, 8, 5), (2, 4))[1] == (3 * 3, 7 * 4)


def msdcrd_per_scale(student, teacher, tau=0.1, grids=(1, 2, 4), w_sample=1.0, w_feature=1.0,
                     w_comp=2.0, target=None):
    """kdzoo's MSDCRD before the windows of all scales shared one pooling product and one
    similarity product (float32): one ``avg_pool2d`` per scale and side, normalised vectors, one
    InfoNCE per window across images and one per scale across windows."""
    def windows(x):
        out = []
        for g in grids:
            kh, kw = math.ceil(x.shape[2] / g), math.ceil(x.shape[3] / g)
            pooled = F.avg_pool2d(x, (kh, kw), (max(1, kh // 2), max(1, kw // 2)))
            out.append(F.normalize(pooled.flatten(2).transpose(1, 2), dim=-1))  # (B, L_g, C)
        return out

    def nce(query, key):  # (..., N, C) -> cross-entropy of every row, diagonal positives
        logits = query @ key.transpose(-1, -2) / tau
        target = torch.arange(query.shape[-2]).expand(logits.shape[:-1])
        return F.cross_entropy(logits.flatten(0, -2), target.flatten(), reduction='none') \
            .view(logits.shape[:-1])

    top = teacher.mean((2, 3)).argmax(1) if target is None else target
    s_scales, t_scales = windows(student), windows(teacher)
    weights = [torch.where(t.argmax(-1) == top[:, None], 1.0, w_comp) for t in t_scales]
    s_all, t_all, w_all = (torch.cat(x, 1) for x in (s_scales, t_scales, weights))
    ce = nce(s_all.transpose(0, 1), t_all.transpose(0, 1))
    loss = w_sample * (ce * w_all.t()).sum() / w_all.sum()
    multi = [i for i, t in enumerate(t_scales) if t.shape[1] > 1]
    if multi:
        ce = torch.cat([nce(s_scales[i], t_scales[i]) for i in multi], 1)
        weight = torch.cat([weights[i] for i in multi], 1)
        loss = loss + w_feature * (ce * weight).sum() / weight.sum()
    return loss


@pytest.mark.parametrize('shape', [(8, 16, 16, 16), (8, 16, 2, 2), (3, 5, 7, 7), (2, 4, 8, 5),
                                   (4, 3, 1, 1), (1, 3, 6, 6)])
@pytest.mark.parametrize('kwargs', [dict(), dict(w_comp=1.0),
                                    dict(grids=(2, 1, 4), w_sample=0.5, w_feature=2.0),
                                    dict(tau=0.5, grids=(3,)), dict(grids=(1,))])
def test_equals_the_per_scale_formula(shape, kwargs):
    """The batched computation gives the per-scale formula's value and gradient to 1e-6."""
    s, t = randn(*shape, seed=1), randn(*shape, seed=2)
    target = torch.arange(shape[0]) % shape[1]
    for tgt in (None, target):
        got_s, ref_s = s.clone().requires_grad_(), s.clone().requires_grad_()
        got = MSDCRDLoss(**kwargs)(got_s, t, target=tgt)
        expected = msdcrd_per_scale(ref_s, t, target=tgt, **kwargs)
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        got.backward()
        expected.backward()
        torch.testing.assert_close(got_s.grad, ref_s.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(tau=0.5, grids=(1, 3), w_sample=0.5, w_feature=2.0, w_comp=3.0),
    dict(grids=(2, 4), w_comp=1.0),
])
def test_matches_loop_formula(kwargs):
    s, t = randn(3, 5, 7, 7, seed=1), randn(3, 5, 7, 7, seed=2)
    assert_matches_reference(MSDCRDLoss(**kwargs)(s, t), msdcrd_by_loop(s, t, **kwargs))


def test_target_drives_categorization():
    s, t = randn(4, 5, 7, 7, seed=1), randn(4, 5, 7, 7, seed=2)
    target = torch.tensor([0, 1, 2, 3])
    loss = MSDCRDLoss()(s, t, target=target)
    assert_matches_reference(loss, msdcrd_by_loop(s, t, target=target))
    assert not torch.isclose(loss, MSDCRDLoss()(s, t))
    without = MSDCRDLoss(use_target=False)(s, t, target=target)
    torch.testing.assert_close(without, MSDCRDLoss()(s, t))


def test_heterogeneous_vit_tokens_vs_cnn_map():
    check_vit_student_vs_cnn_teacher(MSDCRDLoss(), msdcrd_by_loop, 2, 6)


def test_identical_inputs_beat_shuffled_teacher():
    t = randn(6, 5, 7, 7, seed=5)
    loss = MSDCRDLoss()
    assert loss(t, t) < loss(t[torch.tensor([1, 2, 3, 4, 5, 0])], t)
    assert loss(t, t) < loss(randn(6, 5, 7, 7, seed=6), t)


def test_contract_gradient_and_low_precision():
    check_gradient_and_precision(MSDCRDLoss(), randn(3, 5, 7, 7, seed=1), randn(3, 5, 7, 7, seed=2))


def test_batch_of_one_has_no_sample_term():
    s, t = randn(1, 5, 7, 7, seed=1), randn(1, 5, 7, 7, seed=2)
    assert MSDCRDLoss(w_feature=0.0)(s, t) == 0
    loss = MSDCRDLoss()(s, t)
    assert torch.isfinite(loss) and loss > 0
    torch.testing.assert_close(loss.double(), msdcrd_by_loop(s, t, w_sample=0.0))


def test_all_equal_maps_are_finite():
    loss = MSDCRDLoss()(torch.ones(2, 2, 4, 4), torch.ones(2, 2, 4, 4))
    assert torch.isfinite(loss)


def test_builds_from_registry():
    check_builds('MSDCRDLoss')
    loss = MSDCRDLoss()
    assert (loss.tau, loss.grids, loss.w_sample, loss.w_feature, loss.w_comp) == \
        (0.1, (1, 2, 4), 1.0, 1.0, 2.0)
    assert loss.gather_distributed is False


def test_bad_inputs():
    loss = MSDCRDLoss()
    check_dense_errors(loss, 'MSDCRDLoss')
    with pytest.raises(ValueError, match=r'MSDCRDLoss: student must be a dense map.*tokens'):
        loss(randn(2, 49, 5), randn(2, 5, 7, 7))
    with pytest.raises(ValueError, match=r'MSDCRDLoss: target must .* \(2,\), got \(3,\)'):
        loss(randn(2, 5, 7, 7), randn(2, 5, 7, 7), target=torch.zeros(3))
    # label maps hold no class per image: the windows are categorised by the teacher
    s, t = randn(2, 5, 7, 7), randn(2, 5, 7, 7)
    assert torch.equal(loss(s, t, target=torch.zeros(2, 7, 7, dtype=torch.long)), loss(s, t))
    with pytest.raises(ValueError, match=r'MSDCRDLoss: grids must be positive ints'):
        MSDCRDLoss(grids=(0, 2))
