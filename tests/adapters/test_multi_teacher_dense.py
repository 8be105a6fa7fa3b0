"""Several teachers on the mmseg and mmdet skeletons: a Swin teacher and a ResNet teacher, one
forward of each per step and only the parts an item reads, an ensemble of same-shape readouts
equal to the weighted mean, each teacher fed its own normalisation, nothing of them in the state
dict, the agreement per teacher, and an ensemble of other shapes refused naming both."""
import os
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import kdzoo.adapters.mmdet  # noqa: F401  (registers DistillDetector)
import kdzoo.adapters.mmseg  # noqa: F401  (registers DistillSegmentor)
import kdzoo.connectors.projector  # noqa: F401  (registers Projector)
import kdzoo.losses.cwd  # noqa: F401  (registers CWDLoss)
import kdzoo.losses.lfcc  # noqa: F401  (registers LFCCLoss)
import kdzoo.losses.msdcrd  # noqa: F401  (registers MSDCRDLoss)
import kdzoo.losses.mse  # noqa: F401  (registers MSELoss)
import kdzoo.losses.pkd  # noqa: F401  (registers PKDLoss)
from kdzoo.registry import build

SEG = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'seg')
SEG_STUDENT = Config.fromfile(os.path.join(SEG, 'quickstart_student.py')).model
SEG_SWIN = Config.fromfile(os.path.join(SEG, 'quickstart_teacher.py')).model


def calls_of(module):
    calls = []
    module.register_forward_hook(lambda *args: calls.append(1))
    return calls


def quiet_build(cfg):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*has no checkpoint')
        return build(cfg)


# -- segmentation -------------------------------------------------------------------------------
def segmentor(losses):
    return quiet_build(dict(type='DistillSegmentor', student=SEG_STUDENT, distill_cfg=dict(
        teachers=dict(swin=dict(config=SEG_SWIN), cnn=dict(config=SEG_STUDENT)), losses=losses,
        connectors=dict(proj=dict(type='Projector', in_channels=128, out_channels=128)))))


def seg_batch():
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    samples = []
    for i in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                             ori_shape=(64, 64)))
        labels = torch.randint(0, 10, (1, 64, 64), generator=torch.Generator().manual_seed(i))
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return dict(inputs=list(images.to(torch.uint8)), data_samples=samples)


def test_a_segmentor_learns_from_a_swin_and_a_resnet_teacher():
    losses = [dict(student='logits', teacher='swin:logits', loss=dict(type='MSDCRDLoss')),
              dict(student='stage4', teacher='cnn:stage4', loss=dict(type='MSELoss'),
                   connector='proj')]
    model = segmentor(losses).train()
    swin_decode = calls_of(model.teachers['swin'].decode_head)
    cnn_backbone = calls_of(model.teachers['cnn'].backbone)
    cnn_decode = calls_of(model.teachers['cnn'].decode_head)
    data = model.data_preprocessor(seg_batch(), True)
    out = model(**data, mode='loss')
    assert (len(swin_decode), len(cnn_backbone), len(cnn_decode)) == (1, 1, 0)  # stages only
    assert {'distill.loss_msdcrd_0', 'distill.loss_mse_1', 'distill.agree_swin'} <= set(out)
    assert 'distill.agree_cnn' not in out  # its logits are not read in the step
    sum(v for k, v in out.items() if 'loss' in k).backward()
    for teacher in model.teachers.values():
        assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
        assert not teacher.training
    assert all(k.startswith(('distiller.student.', 'distiller.connectors.', 'data_preprocessor'))
               for k in model.state_dict())


def test_a_segmentation_ensemble_of_other_grids_names_both_shapes():
    """UPerNet's logits are at 1/4 of the image, PSPNet-d8's at 1/8: no mean of the two."""
    losses = [dict(student='logits', teacher=['swin:logits', 'cnn:logits'],
                   loss=dict(type='MSDCRDLoss'))]
    model = segmentor(losses).train()
    data = model.data_preprocessor(seg_batch(), True)
    with pytest.raises(ValueError, match=r'its ensemble averages swin:logits of shape '
                                         r'\(2, 10, 16, 16\) with cnn:logits of shape '
                                         r'\(2, 10, 8, 8\)'):
        model(**data, mode='loss')


# -- detection ----------------------------------------------------------------------------------
def tiny_detector(config, **extra):
    from test_mmdet_distill import tiny  # the shrunk mmdet configs of the detection tests
    return tiny(config, **extra)


def detector(r18_extra=None):
    student = tiny_detector('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')
    swin = tiny_detector('mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py')
    r18 = tiny_detector('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py', **(r18_extra or {}))
    losses = [dict(student='neck', teacher='swin:neck', loss=dict(type='PKDLoss'), name='swin'),
              dict(student='neck', teacher='r18:neck', loss=dict(type='PKDLoss'), name='r18'),
              dict(student='cls_scores', teacher=['swin:cls_scores', 'r18:cls_scores'],
                   teacher_weights=[3, 1], loss=dict(type='CWDLoss'), name='ens')]
    model = quiet_build(dict(type='DistillDetector', student=student,
                             data_preprocessor=student['data_preprocessor'], distill_cfg=dict(
                                 teachers=dict(swin=dict(config=swin), r18=dict(config=r18)),
                                 losses=losses)))
    model.init_weights()
    for teacher in model.teachers.values():
        teacher.init_weights()
    return model


def test_a_detector_learns_from_two_teachers_and_their_ensembles_class_maps():
    from test_mmdet_distill import images, samples
    model = detector().train()
    heads = {name: calls_of(t.bbox_head) for name, t in model.teachers.items()}
    out = model(images(2), samples(2, 1), mode='loss')
    assert {name: len(calls) for name, calls in heads.items()} == dict(swin=1, r18=1)
    assert {'distill.loss_swin', 'distill.loss_r18', 'distill.loss_ens'} <= set(out)
    with torch.no_grad(), model.distiller.step():
        _, student, teachers = model.recorded_step(images(2), samples(2, 1))
        pairs = model.distiller.item_values(model.distiller.items[2], student, teachers)
    swin, r18 = teachers['swin']['cls_scores'], teachers['r18']['cls_scores']
    assert len(pairs) == 5
    for level, (_, target) in enumerate(pairs):
        assert torch.allclose(target, (3 * swin[level] + r18[level]) / 4)
    assert all(k.startswith('distiller.student.') for k in model.state_dict())


def test_each_detection_teacher_gets_its_own_normalisation():
    """A teacher normalising as the student gets the student's batch; one normalising otherwise
    (here [0, 1] inputs: mean 0, std 255) gets the batch converted to its own."""
    from test_mmdet_distill import images
    model = detector(r18_extra={'data_preprocessor.mean': [0.0, 0.0, 0.0],
                                'data_preprocessor.std': [255.0, 255.0, 255.0]})
    assert model.renormalise == dict(swin=False, r18=True)
    x = images(1)
    assert model.teacher_inputs(x, 'swin') is x
    own = model.data_preprocessor
    raw = x * own.std + own.mean
    assert torch.allclose(model.teacher_inputs(x, 'r18'), raw / 255.0, atol=1e-5)
