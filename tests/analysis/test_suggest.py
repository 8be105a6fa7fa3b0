"""The order-preserving matching (kdzoo.analysis.suggest): optimal against brute force, the
diagonal for a teacher and a student that are the same model with the same weights, and the
snippet it prints."""
import itertools

import pytest
import torch

from kdzoo.analysis.measure import Similarity
from kdzoo.analysis.suggest import monotone_match, snippet, suggest


def brute_force(score):
    rows, cols = len(score), len(score[0])
    best = max((f for f in itertools.product(range(rows), repeat=cols)
                if all(a <= b for a, b in zip(f, f[1:]))),
               key=lambda f: sum(score[r][j] for j, r in enumerate(f)))
    return sum(score[r][j] for j, r in enumerate(best))


@pytest.mark.parametrize('shape', [(4, 4), (3, 5), (5, 3), (1, 4), (4, 1)])
def test_monotone_match_is_optimal_and_monotone(shape):
    for seed in range(20):
        score = torch.rand(shape, generator=torch.Generator().manual_seed(seed)).tolist()
        match = monotone_match(score)
        assert len(match) == shape[1] and match == sorted(match)
        total = sum(score[r][j] for j, r in enumerate(match))
        assert total == pytest.approx(brute_force(score))


def test_monotone_match_treats_nan_as_worst():
    assert monotone_match([[float('nan'), 0.1], [0.2, float('nan')]]) == [1, 1]


def similarity(cka, teacher, student, shapes_t, shapes_s):
    return Similarity('init', teacher, student, torch.tensor(cka, dtype=torch.float64), 8, 1,
                      dict(teacher=shapes_t, student=shapes_s))


def test_suggest_items_connectors_and_notes():
    names = ['stage1', 'stage2', 'logits']
    sim = similarity([[0.9, 0.2, 0.1], [0.8, 0.7, 0.3], [0.1, 0.4, 0.9]], names, names,
                     dict(stage1=(8, 4, 4), stage2=(16, 2, 2), logits=(10,)),
                     dict(stage1=(8, 4, 4), stage2=(12, 2, 2), logits=(10,)))
    taps = {n: n for n in names}
    items, connectors, notes = suggest(sim, 'cls', taps, taps)
    assert [entry for entry, _ in items] == [
        dict(student='stage1', teacher='stage1', loss=dict(type='LFCCLoss'), name='lfcc_stage1'),
        dict(student='stage2', teacher='stage2', loss=dict(type='LFCCLoss'),
             connector='proj_stage2', name='lfcc_stage2'),
        dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='kd_logits')]
    assert [cka for _, cka in items] == pytest.approx([0.9, 0.7, 0.9])
    assert connectors == dict(proj_stage2=dict(type='Projector', in_channels=12, out_channels=16))
    assert notes == []
    text = snippet(items, connectors, notes, True, False, ['header'])
    namespace = dict(distill_cfg=dict(teacher='t', losses=[], connectors=dict(old=1)))
    exec(text, namespace)
    assert namespace['distill_cfg'] == dict(teacher='t', losses=[e for e, _ in items],
                                            connectors=connectors)
    inherited = snippet(items, {}, notes, False, True, ['header'])
    assert 'distill_cfg = dict(' in inherited and '        _delete_=True,' in inherited


def test_suggest_leaves_out_what_cannot_be_paired():
    sim = similarity([[0.5, 0.1], [0.2, 0.3]], ['stage1', 'logits'], ['stage1', 'logits'],
                     dict(stage1=(8, 4, 4), logits=(10,)), dict(stage1=(8, 4, 4), logits=(4,)))
    items, _, notes = suggest(sim, 'cls', dict(stage1=None, logits='logits'),
                              dict(stage1='stage1', logits='logits'))
    assert items == []
    assert any('student stage1' in n for n in notes)
    assert any('4 classes, the teacher 10' in n for n in notes)


def test_a_named_teachers_items_tap_it_and_carry_its_name():
    """Under distill_cfg.teachers: taps 'NAME:TAP', item and connector names ending in _NAME (two
    teachers' items side by side keep unique names), notes naming the teacher."""
    names = ['stage1', 'logits']
    sim = similarity([[0.9, 0.1], [0.2, 0.8]], names, names,
                     dict(stage1=(16, 4, 4), logits=(10,)), dict(stage1=(8, 4, 4), logits=(4,)))
    sim.teacher_name = 'vit'
    items, connectors, notes = suggest(sim, 'cls', {n: n for n in names}, {n: n for n in names})
    assert [entry for entry, _ in items] == [
        dict(student='stage1', teacher='vit:stage1', loss=dict(type='LFCCLoss'),
             connector='proj_stage1_vit', name='lfcc_stage1_vit')]
    assert connectors == dict(proj_stage1_vit=dict(type='Projector', in_channels=8,
                                                   out_channels=16))
    assert notes == ['logits: the student predicts 4 classes, the teacher vit 10; logit losses '
                     'compare the same classes, so the logits are not paired']


def test_same_model_with_the_same_weights_gives_the_diagonal(tmp_path):
    """A teacher and a student built from one config with one set of weights: every stage is
    matched with itself (measured CKA, the real readouts of a timm model)."""
    from kdzoo.adapters.cls import DistillClassifier
    from kdzoo.analysis.measure import measure
    from kdzoo.analysis.readouts import taps
    torch.manual_seed(0)
    model_cfg = dict(type='TimmClassifier', model_name='test_resnet', num_classes=4, img_size=32)
    from kdzoo.registry import build
    teacher = build(model_cfg)
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, path)
    model = DistillClassifier(student=model_cfg, distill_cfg=dict(
        teacher=dict(config=model_cfg, checkpoint=str(path)),
        losses=[dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))]))
    model.student.load_state_dict(teacher.state_dict())
    g = torch.Generator().manual_seed(1)
    loader = [dict(inputs=torch.rand(8, 3, 32, 32, generator=g) * 255,
                   data_samples=torch.zeros(8, dtype=torch.long)) for _ in range(2)]
    sim, = measure(model, 'cls', loader, 2, 'init')  # one teacher: one map
    assert sim.teacher == sim.student == ['stage1', 'stage2', 'stage3', 'stage4', 'logits']
    assert torch.allclose(torch.diagonal(sim.cka), torch.ones(5, dtype=torch.float64))
    assert sim.agreement == 1.0 and sim.kl == pytest.approx(0.0, abs=1e-9)
    names = taps('cls', model.student, loader[0]['inputs'], sim.student)
    items, connectors, _ = suggest(sim, 'cls', names, names)
    assert [(e['student'], e['teacher']) for e, _ in items] == [
        (f'stage{i}', f'stage{i}') for i in range(1, 5)] + [('logits', 'logits')]
    assert connectors == {}
