"""DistillClassifier: a ViT teacher (own input size) distilling a CNN student through the
reserved readouts and a module-path tap; gradients, state dict, teacher evaluation, errors."""
import pytest
import timm
import torch

import kdzoo.adapters.cls  # noqa: F401  (registers the classification models)
import kdzoo.connectors.projector  # noqa: F401  (registers Projector)
import kdzoo.losses.kd  # noqa: F401  (registers KDLoss)
import kdzoo.losses.msdcrd  # noqa: F401  (registers MSDCRDLoss)
import kdzoo.losses.mse  # noqa: F401  (registers MSELoss)
from kdzoo.registry import build

STUDENT = dict(type='TimmClassifier', model_name='test_resnet', num_classes=5)
TEACHER = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=5,
               img_size=64, patch_size=16, depth=4, embed_dim=48, num_heads=3)
LOSSES = [
    dict(student='logits', teacher='logits', loss=dict(type='KDLoss')),
    dict(student='dense_logits', teacher='dense_logits', loss=dict(type='MSDCRDLoss'), name='ms'),
    dict(student='model.layer3', teacher='stage4', loss=dict(type='MSELoss'), connector='proj',
         weight=0.5),
]


def distill_cfg(losses=LOSSES, **teacher):
    return dict(teacher=dict(config=TEACHER, **teacher), losses=losses,
                connectors=dict(proj=dict(type='Projector', in_channels=192, out_channels=48)))


def make(losses=LOSSES, student=STUDENT, **teacher):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match='no checkpoint'):
        return build(dict(type='DistillClassifier', student=student,
                          distill_cfg=distill_cfg(losses, **teacher)))


def batch(size=32, n=4):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=generator) * 255, torch.tensor([0, 1, 2, 3])[:n]


def test_loss_step_trains_the_student_only():
    model = make().train()
    x, labels = batch()
    losses = model(x, labels, mode='loss')
    assert set(losses) == {'loss_cls', 'distill.loss_kd_0', 'distill.loss_ms', 'distill.loss_mse_2',
                           'distill.ratio_kd_0', 'distill.ratio_ms', 'distill.ratio_mse_2',
                           'distill.agree'}  # the monitor's keys (kdzoo/monitor.py)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.student.parameters() if p.requires_grad)
    assert all(p.grad is not None for p in model.distiller.connectors.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not model.teacher.training
    assert not any(k.startswith('distiller.teacher') for k in model.state_dict())
    prefixes = ('distiller.student.model.', 'distiller.connectors.', 'data_preprocessor')
    assert all(k.startswith(prefixes) for k in model.state_dict())


def test_only_the_needed_readouts_are_computed():
    model = make()
    assert sorted(set(model.student_names)) == ['dense_logits', 'logits']
    assert sorted(set(model.teacher_names['teacher'])) == ['dense_logits', 'logits', 'stage4']


def test_predict_uses_the_student_and_the_teacher_on_request():
    model = make().eval()
    x, labels = batch()
    student = model(x, labels, mode='predict')
    with model.predicting_with_teacher():
        teacher_logits = model(x, mode='tensor')
        teacher = model(x, labels, mode='predict')
    assert torch.allclose(teacher_logits, model.teacher(x), atol=1e-6)
    assert torch.allclose(student[0]['pred_score'], model.student(x)[0].softmax(-1), atol=1e-6)
    assert torch.allclose(teacher[0]['pred_score'], teacher_logits[0].softmax(-1), atol=1e-6)
    assert model.use_teacher is None
    assert int(teacher[3]['gt_label']) == 3


def test_val_step_with_the_preprocessor():
    model = make().eval()
    data = dict(inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in range(2)],
                data_samples=torch.tensor([1, 4]))
    results = model.val_step(data)
    assert [int(r['gt_label']) for r in results] == [1, 4]


def test_readouts_are_checked_when_built_not_every_step(monkeypatch):
    from kdzoo.adapters.cls.model import TimmClassifier
    checked, check = [], TimmClassifier.check_readouts

    def counted(self, names):
        checked.append(list(names))
        return check(self, names)
    monkeypatch.setattr(TimmClassifier, 'check_readouts', counted)
    model = make().train()
    assert checked == [['logits', 'dense_logits'], ['logits', 'dense_logits', 'stage4']]
    model(*batch(), mode='loss')
    model.describe_step(*batch())
    assert len(checked) == 2


def test_describe_step_lists_every_item():
    model = make()
    lines = model.describe_step(*batch())
    assert len(lines) == 3
    assert lines[2].startswith("mse_2: student ['model.layer3'] [(4, 192, 2, 2)] -> connector proj")
    assert "teacher 'stage4' (4, 48, 4, 4)" in lines[2]


def test_student_state_dict_loads_in_plain_timm():
    from kdzoo.adapters import student_state_dict
    model = make().eval()
    plain = timm.create_model('test_resnet', num_classes=5, pretrained=False).eval()
    plain.load_state_dict(student_state_dict(dict(default_scope='kdzoo'), model.state_dict()))
    x, _ = batch()
    assert torch.allclose(plain(model.student.preprocess(x)), model.student(x), atol=1e-6)


def test_teacher_from_config_file_and_checkpoint(tmp_path):
    teacher = build(TEACHER)
    torch.save(teacher.state_dict(), tmp_path / 'teacher.pth')
    (tmp_path / 'teacher.py').write_text(f'model = {TEACHER!r}\n')
    model = build(dict(type='DistillClassifier', student=STUDENT, distill_cfg=dict(
        teacher=dict(config=str(tmp_path / 'teacher.py'), checkpoint=str(tmp_path / 'teacher.pth')),
        losses=LOSSES[:1])))
    x, _ = batch()
    assert torch.allclose(model.teacher(x), teacher.eval()(x), atol=1e-6)


def test_num_classes_mismatch_for_a_logit_loss():
    with pytest.raises(ValueError, match=r'num_classes=7 and the teacher num_classes=5.*'
                                         r'cfg_options=dict\(num_classes=7\)'):
        make(student=dict(STUDENT, num_classes=7))


def test_num_classes_may_differ_for_feature_losses():
    model = make(losses=LOSSES[2:], student=dict(STUDENT, num_classes=7))
    assert torch.isfinite(model(*batch(), mode='loss')['distill.loss_mse_0'])


@pytest.mark.parametrize('tap, hint', [('stage5', "'stage1'"), ('model.layer9', "'model.layer1'")])
def test_unknown_tap_suggests_close_names(tap, hint):
    losses = [dict(student=tap, teacher='stage4', loss=dict(type='MSELoss'))]
    with pytest.raises(ValueError, match=rf"student tap '{tap}' is not a module.*{hint}"):
        make(losses=losses)
