"""DistillSegmentor on the quick-start models (a Swin UPerNet teacher with 1/4 logits, a ResNet
PSPNet-d8 student with 1/8 logits) and the generated set: one student forward, the student's own
losses, readouts, prediction by student / teacher, build-time errors; the set itself."""
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

import kdzoo.connectors.projector  # noqa: F401  (registers Projector)
import kdzoo.losses.lfcc  # noqa: F401  (registers LFCCLoss)
import kdzoo.losses.msdcrd  # noqa: F401  (registers MSDCRDLoss)
from kdzoo.adapters.mmseg import RESERVED, ShapesSegDataset
from kdzoo.registry import build
from kdzoo.toydata.seg import CLASSES, make_seg_dataset

CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'seg')
STUDENT = Config.fromfile(os.path.join(CONFIGS, 'quickstart_student.py')).model
TEACHER = Config.fromfile(os.path.join(CONFIGS, 'quickstart_teacher.py')).model
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')]
LOSSES = [
    dict(student='logits', teacher='logits', loss=dict(type='MSDCRDLoss')),
    dict(student='stage4', teacher='stage2', loss=dict(type='LFCCLoss'), connector='proj'),
    dict(student='decode_head.bottleneck', teacher='decode_head.fpn_bottleneck',
         loss=dict(type='LFCCLoss'), connector='proj_head', name='head'),
]
CONNECTORS = dict(proj=dict(type='Projector', in_channels=128, out_channels=64),
                  proj_head=dict(type='Projector', in_channels=32, out_channels=64))


def make(losses=LOSSES, student=STUDENT, teacher=TEACHER):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match='no checkpoint'):
        return build(dict(type='DistillSegmentor', student=student, distill_cfg=dict(
            teacher=dict(config=teacher), losses=losses, connectors=CONNECTORS)))


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_seg_dataset(str(tmp_path_factory.mktemp('seg')), num_images=(4, 2))


def shapes(data_root):
    with DefaultScope.overwrite_default_scope('mmseg'):  # mmseg's transforms
        return ShapesSegDataset(data_root=data_root, pipeline=PIPELINE, data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'))


@pytest.fixture(scope='module')
def batch(data_root):
    dataset = shapes(data_root)
    return pseudo_collate([dataset[0], dataset[1]])


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda *args: calls.append(1))
    return calls


def test_loss_step_trains_the_student_only(batch):
    model = make().train()
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg',
                           'distill.loss_msdcrd_0', 'distill.loss_lfcc_1', 'distill.loss_head',
                           'distill.ratio_msdcrd_0', 'distill.ratio_lfcc_1', 'distill.ratio_head',
                           'distill.agree'}  # the monitor's keys (kdzoo/monitor.py)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in model.student.parameters())
    assert all(p.grad is not None for p in model.distiller.connectors.parameters())
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert not model.teacher.training
    prefixes = ('distiller.student.', 'distiller.connectors.')
    assert all(k.startswith(prefixes) for k in model.state_dict())


def test_one_student_forward_gives_mmseg_own_losses(batch):
    model = make().train()
    data = model.data_preprocessor(batch, True)
    student = model.student
    calls = {name: count_calls(module) for name, module in
             [('backbone', student.backbone), ('decode_head', student.decode_head),
              ('teacher_head', model.teacher.decode_head)]}
    torch.manual_seed(1)
    losses = model(**data, mode='loss')
    assert {k: len(v) for k, v in calls.items()} == {'backbone': 1, 'decode_head': 1,
                                                     'teacher_head': 1}
    torch.manual_seed(1)
    own = student.loss(data['inputs'], data['data_samples'])
    for key, value in own.items():
        assert torch.allclose(losses[key], value), key


def test_heterogeneous_logit_grids_without_resizing(batch):
    model = make()
    data = model.data_preprocessor(batch, True)
    lines = model.describe_step(**data)
    assert len(lines) == 3
    # the student's d8 logits (1/8) against the UPerNet teacher's (1/4), aligned by the loss
    assert lines[0].startswith("msdcrd_0: student ['logits'] [(2, 10, 8, 8)] -> connector none")
    assert "teacher 'logits' (2, 10, 16, 16) | MSDCRDLoss = " in lines[0]
    assert "student ['stage4'] [(2, 128, 8, 8)] -> connector proj -> [(2, 64, 8, 8)]" in lines[1]
    assert "teacher 'stage2' (2, 64, 8, 8)" in lines[1]
    assert "teacher 'decode_head.fpn_bottleneck' (2, 64, 16, 16)" in lines[2]
    for line in lines:
        assert np.isfinite(float(line.split(' = ')[1].split()[0]))


def test_stage_items_skip_the_teacher_decode_head(batch):
    model = make(losses=LOSSES[1:2])
    assert model.teacher_names['teacher'] == ['stage2'] and not model.teacher_decodes['teacher']
    calls = count_calls(model.teacher.decode_head)
    data = model.data_preprocessor(batch, True)
    assert torch.isfinite(model(**data, mode='loss')['distill.loss_lfcc_0'])
    assert not calls


def test_predict_uses_the_student_and_the_teacher_on_request(batch):
    model = make().eval()
    results = model.val_step(batch)
    data = model.data_preprocessor(batch, False)
    expected = model.student.predict(data['inputs'], data['data_samples'])
    assert torch.equal(results[0].pred_sem_seg.data, expected[0].pred_sem_seg.data)
    assert results[0].pred_sem_seg.shape == results[0].gt_sem_seg.shape == (64, 64)
    with model.predicting_with_teacher():
        teacher = model.val_step(batch)
        logits = model(data['inputs'], mode='tensor')
    assert model.use_teacher is None
    assert torch.allclose(teacher[1].seg_logits.data,
                          model.teacher.predict(data['inputs'])[1].seg_logits.data, atol=1e-5)
    assert torch.allclose(logits, model.teacher(data['inputs'], mode='tensor'), atol=1e-6)
    assert torch.allclose(model(data['inputs'], mode='tensor'), model.student(data['inputs']))


@pytest.mark.parametrize('tap, hint', [('stage5', "'stage1'"),
                                       ('backbone.layer9', "'backbone.layer1'")])
def test_unknown_tap_suggests_close_names(tap, hint):
    losses = [dict(student=tap, teacher='stage4', loss=dict(type='LFCCLoss'))]
    with pytest.raises(ValueError, match=rf"student tap '{tap}' is not a module of "
                                         rf"EncoderDecoder.*Closest valid paths: \[.*{hint}"):
        make(losses=losses)


def test_teacher_num_classes_must_match_for_logit_items():
    teacher = Config(dict(model=TEACHER))
    teacher.merge_from_dict({'model.decode_head.num_classes': 7})
    with pytest.raises(ValueError, match=r'student has num_classes=10 and the teacher '
                                         r"num_classes=7.*'decode_head.num_classes': 10"):
        make(losses=LOSSES[:1], teacher=teacher.model)
    # stage items compare features: other classes are fine
    assert make(losses=LOSSES[1:2], teacher=teacher.model).teacher.decode_head.num_classes == 7


def test_reserved_readouts_and_stage_count(batch):
    assert RESERVED == ('logits', 'stage1', 'stage2', 'stage3', 'stage4')
    student = Config(dict(model=STUDENT))
    student.merge_from_dict({'model.backbone.out_indices': (0, 1, 2),
                             'model.decode_head.in_channels': 64,
                             'model.decode_head.in_index': 2,
                             'model.auxiliary_head.in_channels': 32,
                             'model.auxiliary_head.in_index': 1})
    model = make(losses=LOSSES[1:2], student=student.model)
    with pytest.raises(ValueError, match=r"student tap 'stage4': the backbone returns 3 outputs"):
        model(**model.data_preprocessor(batch, True), mode='loss')


def test_generated_set_is_deterministic_mmseg_layout(tmp_path, data_root):
    again = make_seg_dataset(str(tmp_path), num_images=(4, 2))
    for sub in ('img_dir/train', 'ann_dir/train', 'img_dir/val', 'ann_dir/val'):
        names = sorted(os.listdir(os.path.join(data_root, sub)))
        assert names == sorted(os.listdir(os.path.join(again, sub)))
        for name in names:
            with open(os.path.join(data_root, sub, name), 'rb') as a, \
                    open(os.path.join(again, sub, name), 'rb') as b:
                assert a.read() == b.read()
    assert len(os.listdir(os.path.join(data_root, 'img_dir/val'))) == 2
    dataset = shapes(data_root)
    assert len(dataset) == 4 and dataset.metainfo['classes'] == CLASSES and len(CLASSES) == 10
    item = dataset[0]
    labels = item['data_samples'].gt_sem_seg.data
    assert item['inputs'].shape == (3, 64, 64) and labels.shape == (1, 64, 64)
    assert 0 in labels and labels.max() < 10 and len(labels.unique()) >= 2
