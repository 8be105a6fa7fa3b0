"""Issue 28 points 2 and 3: detection pairings checked when the model is built. Class maps of
other classes or anchors (no connector advice that mixes classes), FPN levels of other strides
(an error, or resize=True and a warning naming the strides) and a teacher tap in a part the
teacher step does not run (an R-CNN roi_head) fail before any batch, saying why."""
import pytest
import torch
from test_mmdet_distill import RETINA_R18, images, make, samples

import kdzoo.losses.dkd  # noqa: F401  (registers DKDLoss)
import kdzoo.losses.kd  # noqa: F401  (registers KDLoss)
import kdzoo.losses.mse  # noqa: F401  (registers MSELoss)
from kdzoo.distiller import parse_items

FASTER = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
CWD_SCORES = [dict(student='cls_scores', teacher='cls_scores', loss=dict(type='CWDLoss'))]
PKD_NECK = [dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'))]
# RetinaNet's FPN from C2 (strides 4..64) instead of C3 (8..128)
STRIDES_4_TO_64 = {'neck.start_level': 0, 'neck.in_channels': [64, 128, 256, 512],
                   'bbox_head.anchor_generator.strides': [4, 8, 16, 32, 64]}


def test_class_maps_of_other_classes_fail_at_build_saying_what_pairs():
    with pytest.raises(ValueError) as error:
        make(teacher=RETINA_R18, teacher_extra={'bbox_head.num_classes': 5}, losses=CWD_SCORES)
    assert str(error.value) == (
        "distill item 0: student 'cls_scores' of RetinaNet holds 9 anchors x 10 classes per "
        "location (90 channels) but teacher 'cls_scores' of RetinaNet holds 9 x 5 (45 channels); "
        'class scores are compared channel by channel (anchor a, class c with anchor a, class '
        'c), and no connector turns one set of classes into another (a Projector 90 -> 45 would '
        "learn a mix of anchors and classes). A valid pairing: a teacher trained on the "
        "student's classes (the same num_classes and class list) with the same anchors per "
        "location (its head's anchor_generator); otherwise distil the FPN levels "
        "(student='neck', teacher='neck')")


def test_class_maps_with_a_connector_are_refused_too():
    items = [dict(CWD_SCORES[0], connector='proj')]
    with pytest.raises(ValueError, match=r"holds 9 x 5 \(45 channels\)"):
        make(teacher=RETINA_R18, teacher_extra={'bbox_head.num_classes': 5}, losses=items)


def test_levels_of_other_strides_fail_at_build_naming_them():
    with pytest.raises(ValueError) as error:
        make(teacher=RETINA_R18, teacher_extra=STRIDES_4_TO_64, losses=PKD_NECK)
    assert str(error.value) == (
        "distill item 0: would pair student 'neck' levels at strides [8, 16, 32, 64, 128] "
        "(RetinaNet) with teacher 'neck' levels at strides [4, 8, 16, 32, 64] (RetinaNet); "
        'levels are paired one to one (level i with level i), so maps of other strides would be '
        "resized onto each other. Give the teacher the student's strides (its neck's "
        "start_level / num_outs and its head's prior_generator strides, with "
        'distill_cfg.teacher.cfg_options), or set resize=True on the item to pair them resized '
        '(a warning names the strides)')


def test_resize_true_accepts_other_strides_with_a_warning_naming_them():
    items = [dict(PKD_NECK[0], resize=True, name='pkd')]
    with pytest.warns(UserWarning) as caught:
        model = make(teacher=RETINA_R18, teacher_extra=STRIDES_4_TO_64, losses=items)
    messages = [str(w.message) for w in caught]
    assert ("distill item 0 ('pkd', resize=True): pairs student 'neck' levels at strides "
            "[8, 16, 32, 64, 128] (RetinaNet) with teacher 'neck' levels at strides "
            '[4, 8, 16, 32, 64] (RetinaNet), level by level, each pair resized to one grid'
            ) in messages
    assert model.distiller.items[0].resize


def test_class_maps_of_other_strides_fail_too():
    with pytest.raises(ValueError, match=r"student 'cls_scores' levels at strides \[8, 16, 32, "
                                         r"64, 128\] \(RetinaNet\) with teacher 'cls_scores' "
                                         r'levels at strides \[4, 8, 16, 32, 64\]'):
        make(teacher=RETINA_R18, teacher_extra=STRIDES_4_TO_64, losses=CWD_SCORES)


def test_resize_must_be_a_boolean():
    with pytest.raises(ValueError, match=r"distill item 0: resize must be True or False, got "
                                         r"'yes'"):
        parse_items([dict(PKD_NECK[0], resize='yes')])


def test_a_teacher_tap_in_the_roi_head_fails_at_build_saying_which_parts_run():
    items = [dict(student='neck', teacher='roi_head.bbox_head.fc_cls', loss=dict(type='MSELoss'))]
    with pytest.raises(ValueError) as error:
        make(student=FASTER, teacher=FASTER, losses=items)
    assert str(error.value) == (
        "distill item 0: teacher tap 'roi_head.bbox_head.fc_cls' is inside 'roi_head', which "
        "kdzoo's detection teacher does not run: the teacher step runs only ['backbone', "
        "'neck', 'rpn_head'] of FasterRCNN (extract_feat and the dense head, without grad); an "
        "R-CNN roi_head would need the teacher's own proposals and sampling, so it is not run "
        "(docs/distill_cfg.md). Tap one of those parts instead ('neck' for the FPN levels, "
        "'cls_scores' for the dense head's class maps)")


def test_a_student_tap_in_the_roi_head_is_not_refused():
    """The student runs its own whole loss, roi_head included: only teacher taps are checked."""
    items = [dict(student='roi_head.bbox_head.fc_cls', teacher='rpn_head.rpn_cls',
                  loss=dict(type='MSELoss'))]
    assert make(student=FASTER, teacher=FASTER, losses=items).distiller.items[0].student == (
        'roi_head.bbox_head.fc_cls',)


def test_kd_on_sigmoid_class_maps_is_refused_with_a_per_anchor_loss():
    items = [dict(student='cls_scores', teacher='cls_scores', loss=dict(type='KDLoss'))]
    with pytest.raises(ValueError) as error:
        make(teacher=RETINA_R18, losses=items)
    assert str(error.value) == (
        "distill item 0: KDLoss takes one softmax over the channels of student 'cls_scores', "
        "but RetinaNet's dense head gives 9 anchors x 10 classes per location and scores them "
        'with a sigmoid per class: the softmax would compare one distribution over anchors and '
        'classes together, which neither head predicts. Use KDLoss(sigmoid=True) (a binary KD '
        "of every anchor's every class, as the head scores them), CWDLoss or MSELoss "
        '(docs/distill_cfg.md)')
    items[0]['loss'] = dict(type='KDLoss', sigmoid=True)
    model = make(teacher=RETINA_R18, losses=items)
    losses = model.train()(images(2), samples(1, 1), mode='loss')
    assert torch.isfinite(losses['distill.loss_kd_0'])


def test_dkd_refusal_recommends_a_per_anchor_loss_for_class_maps():
    items = [dict(student='cls_scores', teacher='cls_scores', loss=dict(type='DKDLoss'))]
    with pytest.raises(ValueError, match=r"on 'cls_scores' \(every anchor's class scores\) "
                                         r'KDLoss\(sigmoid=True\) for a sigmoid head'):
        make(teacher=RETINA_R18, losses=items)


def test_the_heads_classification_conv_is_a_class_map_too():
    items = [dict(student='bbox_head.retina_cls', teacher='cls_scores',
                  loss=dict(type='CWDLoss'))]
    with pytest.raises(ValueError, match=r"student 'bbox_head.retina_cls' of RetinaNet holds 9 "
                                         r"anchors x 10 classes .* teacher 'cls_scores' of "
                                         r'RetinaNet holds 9 x 5 \(45 channels\)'):
        make(teacher=RETINA_R18, teacher_extra={'bbox_head.num_classes': 5}, losses=items)
    items = [dict(student='cls_scores', teacher='bbox_head.retina_cls', loss=dict(type='KDLoss'))]
    with pytest.raises(ValueError, match=r"KDLoss takes one softmax over the channels of student "
                                         r"'cls_scores'"):
        make(teacher=RETINA_R18, losses=items)


def test_levels_on_other_grids_fail_on_the_first_batch_though_the_heads_declare_one_stride():
    # The teacher's FPN starts at C2 (strides 4..64) while its head still declares 8..128: the
    # build-time stride check cannot see it; the first batch's grids do.
    extra = {'neck.start_level': 0, 'neck.in_channels': [64, 128, 256, 512]}
    model = make(teacher=RETINA_R18, teacher_extra=extra, losses=PKD_NECK)
    model.train()
    with pytest.raises(ValueError) as error:
        model(images(2), samples(1, 1), mode='loss')
    assert str(error.value).startswith(
        "distill item 0: student 'neck' levels have grids [[8, 8], [4, 4], [2, 2], [1, 1], "
        "[1, 1]] but teacher 'neck' levels [[16, 16], [8, 8], [4, 4], [2, 2], [1, 1]] on the "
        'same images: the paired levels are at other strides')
    resized = make(teacher=RETINA_R18, teacher_extra=extra,
                   losses=[dict(PKD_NECK[0], resize=True)])
    resized.train()
    assert torch.isfinite(resized(images(2), samples(1, 1), mode='loss')['distill.loss_pkd_0'])
