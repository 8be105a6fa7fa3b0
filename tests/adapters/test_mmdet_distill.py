"""DistillDetector on small detectors built from mmdet's own configs: the loss step (student only
trained), 'cls_scores' of one- and two-stage heads, empty ground truth, a teacher that finds
nothing, the teacher's own normalisation, predict with either model, and build-time errors."""
import warnings

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import kdzoo.adapters.mmdet  # noqa: F401  (registers DistillDetector)
import kdzoo.losses.cwd  # noqa: F401
import kdzoo.losses.pkd  # noqa: F401
from kdzoo.registry import build
from kdzoo.teacher import model_config

RETINA_R18 = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
NUM_CLASSES = 10
RESNET18_CHANNELS = [64, 128, 256, 512]


def shrink_options(model, width=32):
    """cfg_options (keys relative to the model dict) making an mmdet detector tiny and random:
    no pretrained download, ResNet-18 / narrow ResNeXt-50 / 1-block Swin, ``width``-channel FPN and
    heads, ``NUM_CLASSES`` classes. Works for RetinaNet, FCOS, GFL, Faster and Mask R-CNN."""
    backbone, options = model['backbone'], {'backbone.init_cfg': None}
    if backbone['type'] == 'ResNet':
        options.update({'backbone.depth': 18, 'neck.in_channels': RESNET18_CHANNELS})
    elif backbone['type'] == 'ResNeXt':
        options.update({'backbone.depth': 50, 'backbone.groups': 4, 'backbone.base_width': 4})
    elif backbone['type'] == 'SwinTransformer':
        options.update({'backbone.embed_dims': 32, 'backbone.depths': [1, 1, 1, 1],
                        'backbone.num_heads': [1, 2, 4, 8],
                        'neck.in_channels': [32 * 2 ** i for i in backbone['out_indices']]})
    options['neck.out_channels'] = width
    if 'bbox_head' in model:
        options.update({'bbox_head.in_channels': width, 'bbox_head.feat_channels': width,
                        'bbox_head.stacked_convs': 1, 'bbox_head.num_classes': NUM_CLASSES})
    if 'rpn_head' in model:
        options.update({'rpn_head.in_channels': width, 'rpn_head.feat_channels': width})
    roi = model.get('roi_head') or {}
    if 'bbox_head' in roi:
        options.update({'roi_head.bbox_roi_extractor.out_channels': width,
                        'roi_head.bbox_head.in_channels': width,
                        'roi_head.bbox_head.fc_out_channels': width,
                        'roi_head.bbox_head.num_classes': NUM_CLASSES})
    if 'mask_head' in roi:
        options.update({'roi_head.mask_roi_extractor.out_channels': width,
                        'roi_head.mask_head.in_channels': width,
                        'roi_head.mask_head.conv_out_channels': width,
                        'roi_head.mask_head.num_convs': 1,
                        'roi_head.mask_head.num_classes': NUM_CLASSES})
    return options


def tiny(config, **extra):
    """The model dict of the scoped ``config``, shrunk (plus ``extra`` cfg_options)."""
    model = model_config(config)
    return model_config(model, {**shrink_options(model), **extra})


def make(student=RETINA_R18, teacher='mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py',
         losses=None, teacher_extra=None, **student_extra):
    losses = losses or [
        dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'), name='pkd'),
        dict(student='cls_scores', teacher='cls_scores', loss=dict(type='CWDLoss'), name='cwd')]
    torch.manual_seed(0)
    student = tiny(student, **student_extra)
    if isinstance(teacher, str):
        teacher = tiny(teacher, **(teacher_extra or {}))
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'distill_cfg.teacher has no checkpoint')
        model = build(dict(type='DistillDetector', student=student,
                           data_preprocessor=student['data_preprocessor'],
                           distill_cfg=dict(teacher=dict(config=teacher), losses=losses)))
    model.init_weights()
    model.teacher.init_weights()
    return model


def test_init_weights_reaches_the_student():
    """The runner calls the wrapper's init_weights: the student's head gets its focal-loss prior."""
    student = tiny(RETINA_R18)
    model = build(dict(type='DistillDetector', student=student, distill_cfg=dict(
        teacher=dict(config=student), losses=[dict(student='neck', teacher='neck',
                                                    loss=dict(type='PKDLoss'))])))
    bias = model.student.bbox_head.retina_cls.bias
    assert not torch.allclose(bias, torch.full_like(bias, -4.595), atol=1e-3)
    model.init_weights()
    assert torch.allclose(bias, torch.full_like(bias, -4.595), atol=1e-3)


def samples(*counts, size=64):
    """Data samples with ``counts[i]`` ground-truth boxes each (0: an image with no object)."""
    out = []
    generator = torch.Generator().manual_seed(0)
    for n in counts:
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), pad_shape=(size, size), batch_input_shape=(size, size),
            ori_shape=(size, size), scale_factor=(1.0, 1.0)))
        xy = torch.rand(n, 2, generator=generator) * size / 2
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + size / 4], 1),
            labels=torch.randint(0, NUM_CLASSES, (n,), generator=generator))
        out.append(sample)
    return out


def images(n, size=64):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def finite(losses):
    return all(torch.isfinite(v).all() for value in losses.values()
               for v in (value if isinstance(value, list) else [value]))


def total(losses):
    return sum(sum(v) if isinstance(v, list) else v for v in losses.values())


def test_loss_step_trains_the_student_only():
    model = make().train()
    losses = model(images(2), samples(2, 1), mode='loss')
    assert {'loss_cls', 'loss_bbox', 'distill.loss_pkd', 'distill.loss_cwd'} <= set(losses)
    assert finite(losses) and float(losses['distill.loss_cwd']) > 0
    total(losses).backward()
    assert all(p.grad is not None for n, p in model.student.named_parameters()
               if p.requires_grad and n.startswith(('neck', 'bbox_head')))
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not model.teacher.training
    assert all(k.startswith('distiller.student.') for k in model.state_dict())


def test_cls_scores_are_the_heads_per_level_class_maps():
    model = make()
    with model.distiller.step():
        _, student, teachers = model.recorded_step(images(2), samples(1, 1))
    teacher = teachers['teacher']
    feats = model.student.extract_feat(images(2))
    expected = model.student.bbox_head(feats)[0]
    assert len(student['cls_scores']) == len(teacher['cls_scores']) == 5
    for got, want in zip(student['cls_scores'], expected):
        assert torch.allclose(got, want, atol=1e-6)
    assert teacher['cls_scores'][0].shape == (2, 9 * NUM_CLASSES, 8, 8)


def test_cls_scores_come_from_the_distillers_one_recording(monkeypatch):
    """The student's dense head is recorded by the distiller's taps (no second recording nested
    in the step): the model builds exactly the distiller's two Taps."""
    from kdzoo.taps import Taps
    built, init = [], Taps.__init__

    def counted(self, *args, **kwargs):
        built.append(self)
        init(self, *args, **kwargs)
    monkeypatch.setattr(Taps, '__init__', counted)
    model = make()
    assert built == [model.distiller.student_taps, model.distiller.teacher_taps['teacher']]
    with model.distiller.step():
        _, student, _ = model.recorded_step(images(2), samples(1, 1))
        recorded = model.distiller.student_taps.get('bbox_head')
    assert student['cls_scores'] is recorded[0]


def test_two_stage_student_with_rpn_objectness_and_a_swin_mask_rcnn_teacher():
    model = make('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py')
    with model.distiller.step():
        _, student, teachers = model.recorded_step(images(2), samples(1, 0))
    teacher = teachers['teacher']
    assert [tuple(s.shape) for s in student['cls_scores']] == \
        [(2, 3, 64 // s, 64 // s) for s in (4, 8, 16, 32, 64)]
    assert [s.shape for s in teacher['cls_scores']] == [s.shape for s in student['cls_scores']]
    losses = model.train()(images(2), samples(1, 0), mode='loss')
    assert {'loss_rpn_cls', 'loss_cls', 'distill.loss_pkd', 'distill.loss_cwd'} <= set(losses)
    assert finite(losses)


@pytest.mark.parametrize('student', [RETINA_R18,
                                     'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
                                     'mmdet::gfl/gfl_r50_fpn_1x_coco.py'])
def test_images_without_objects_give_finite_losses(student):
    model = make(student, teacher=student).train()
    losses = model(images(2), samples(0, 0), mode='loss')
    assert finite(losses)
    total(losses).backward()


def test_a_teacher_that_finds_nothing():
    model = make()
    for conv in (model.teacher.bbox_head.retina_cls,):
        torch.nn.init.constant_(conv.bias, -50.0)
    model.eval()
    with model.predicting_with_teacher():
        found = model(images(2), samples(1, 1), mode='predict')
    assert all(len(s.pred_instances) == 0 for s in found)
    losses = model.train()(images(2), samples(1, 1), mode='loss')
    assert finite(losses)


def test_predict_runs_the_student_or_the_teacher():
    model = make().eval()
    x = images(2)
    student = model(x, samples(1, 1), mode='predict')
    direct = model.student.predict(x, samples(1, 1))
    assert torch.equal(student[0].pred_instances.bboxes, direct[0].pred_instances.bboxes)
    with model.predicting_with_teacher():
        feats = model(x, samples(1, 1), mode='tensor')
    assert torch.allclose(feats[0][0], model.teacher.bbox_head(model.teacher.extract_feat(x))[0][0])
    assert model.use_teacher is None


def test_teacher_gets_its_own_normalisation():
    """A caffe-style teacher (BGR, std 1) sees the batch its own preprocessor would make."""
    model = make(teacher='mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
                 losses=[dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'))])
    raw = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)]
    student = model.data_preprocessor(dict(inputs=raw), False)['inputs']
    teacher = model.teacher.data_preprocessor(dict(inputs=raw), False)['inputs']
    assert not torch.allclose(student, teacher)
    assert torch.allclose(model.teacher_inputs(student), teacher, atol=1e-4)


def test_describe_step_lists_every_item():
    lines = make().describe_step(images(2), samples(1, 0))
    assert len(lines) == 2
    assert lines[0].startswith("pkd: student ['neck'] [[(2, 32, 8, 8), (2, 32, 4, 4)")
    assert "teacher 'cls_scores' [(2, 90, 8, 8)" in lines[1]


def test_different_numbers_of_fpn_levels_fail_at_build_time_naming_both():
    with pytest.raises(ValueError, match=r"student 'neck' of RetinaNet gives 5 levels but teacher "
                                         r"'neck' of RetinaNet gives 4.*neck.num_outs"):
        make(teacher_extra={'neck.num_outs': 4})


def test_cls_scores_need_a_dense_head():
    with pytest.raises(ValueError, match=r"teacher tap 'cls_scores' needs a dense head.*DETR"):
        detr = model_config('mmdet::detr/detr_r50_8xb2-150e_coco.py', {
            'backbone.init_cfg': None, 'backbone.depth': 18, 'neck.in_channels': [512]})
        make(teacher=detr,
             losses=[dict(student='cls_scores', teacher='cls_scores', loss=dict(type='CWDLoss'))])


def test_unreachable_checkpoint_url_is_a_clear_error():
    from kdzoo.checkpoint import CheckpointError
    student = tiny(RETINA_R18)
    with pytest.raises(CheckpointError, match='could not download checkpoint https://.*local file'):
        build(dict(type='DistillDetector', student=student, distill_cfg=dict(
            teacher=dict(config=student, checkpoint='https://download.invalid/teacher.pth'),
            losses=[dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'))])))
