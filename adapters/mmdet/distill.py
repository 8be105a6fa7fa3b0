"""``DistillDetector``: an mmdet student, a frozen teacher and a :class:`kdzoo.distiller.Distiller`.

Built by ``kdzoo.adapters.wrap`` from an mmdet config with ``distill_cfg`` (docs/distill_cfg.md)::

    model = dict(type='kdzoo.DistillDetector',
                 student=<the config's own model dict>,
                 data_preprocessor=<the student's data_preprocessor>,
                 distill_cfg=dict(
                     teacher=dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
                                  checkpoint='https://download.openmmlab.com/...'),
                     losses=[dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'))]))

Taps:

- module paths of either detector (``'neck'``: the FPN's tuple of levels, paired level by level;
  ``'backbone.layer3'``; ``'bbox_head.retina_cls'``, a conv shared by the levels, records a list).
- ``'cls_scores'`` (reserved): the per-level classification maps of the dense head, ``(B, A·K, H_l,
  W_l)`` per level before the sigmoid / softmax: ``bbox_head`` of a one-stage detector (RetinaNet,
  FCOS, GFL, ...); for a two-stage detector (Faster / Mask R-CNN) the RPN head's objectness maps
  ``(B, A, H_l, W_l)`` (the R-CNN head classifies proposals, not locations).

Training step: the student's own ``loss`` (one forward; the distiller's taps record in it,
``cls_scores`` is read from the dense head's recorded output), then the teacher's
``extract_feat`` (and its dense head when a teacher item needs it) under ``torch.no_grad()``,
then ``distill.loss_<name>`` per item. Teacher taps therefore live in the backbone, the neck or
the dense head (not in an R-CNN ``roi_head``). Teacher and student may be different detector
types; each keeps its own input normalisation (the student's normalised batch is converted to the
teacher's mean / std / channel order). ``predict`` / ``tensor`` run the student, or the teacher
inside ``predicting_with_teacher()``. Losses that need a class label per location (``DKDLoss``,
``OFALoss``) are refused at build time: a detector has no such label before its heads assign
targets to anchors. Building, initialisation, mode dispatch and ``describe_step`` are the
skeleton's (:mod:`kdzoo.adapters.base`).
"""
import torch
from mmengine.registry import DefaultScope

from kdzoo.registry import MODELS

from ..base import DistillModel, label_using

RESERVED = ('cls_scores',)


def build_mmdet(cfg):
    """Build an mmdet model (detector, data preprocessor) from ``cfg``, in the mmdet scope; an
    ``nn.Module`` is returned as it is."""
    if isinstance(cfg, torch.nn.Module):
        return cfg
    from mmdet.registry import MODELS as MMDET_MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg)


def dense_head_name(detector):
    """The attribute holding the detector's dense head: ``'bbox_head'`` (one-stage) or
    ``'rpn_head'`` (two-stage); ``None`` when it has neither (e.g. DETR-like heads)."""
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
    for name in ('bbox_head', 'rpn_head'):
        if isinstance(getattr(detector, name, None), BaseDenseHead):
            return name
    return None


def num_levels(detector, tap):
    """How many levels ``tap`` gives, when the detector says so (``None`` otherwise): the FPN's
    ``num_outs`` for a neck path, the dense head's prior levels for ``'cls_scores'``."""
    if tap == 'cls_scores':
        head = getattr(detector, dense_head_name(detector))
        generator = getattr(head, 'prior_generator', None)
        return getattr(generator, 'num_levels', None)
    module = detector.get_submodule(tap) if tap in dict(detector.named_modules()) else None
    return getattr(module, 'num_outs', None)


def check_levels(items, student, teacher):
    """Level-wise items need the same number of levels on both sides: fail at build time."""
    for index, item in enumerate(items):
        if len(item.student) != 1:
            continue
        s_levels = num_levels(student, item.student[0])
        t_levels = num_levels(teacher, item.teacher)
        if s_levels is not None and t_levels is not None and s_levels != t_levels:
            raise ValueError(
                f'distill item {index}: student {item.student[0]!r} of {type(student).__name__} '
                f'gives {s_levels} levels but teacher {item.teacher!r} of {type(teacher).__name__} '
                f'gives {t_levels}; levels are paired one to one (level i with level i), so give '
                'both the same number of FPN levels (neck.num_outs, and the head\'s strides), e.g. '
                'with distill_cfg.teacher.cfg_options')


def check_cls_scores(items, student, teacher):
    """``'cls_scores'`` needs a dense head (one-stage ``bbox_head`` or two-stage ``rpn_head``)."""
    for index, item in enumerate(items):
        for side, detector, taps in (('student', student, item.student),
                                     ('teacher', teacher, [item.teacher])):
            if 'cls_scores' in taps and dense_head_name(detector) is None:
                raise ValueError(
                    f"distill item {index}: {side} tap 'cls_scores' needs a dense head (bbox_head "
                    f'of a one-stage detector or rpn_head of a two-stage one), but '
                    f"{type(detector).__name__} has none; tap a module path instead (e.g. 'neck')")


def check_no_labels_needed(items):
    """Detection has no class label per location before target assignment: a loss that needs
    ``target`` (DKD, OFA) cannot be given one, so it is refused when the model is built."""
    for index, name in label_using(items):
        raise ValueError(
            f'distill item {index}: {name} needs a ground-truth class per sample, but detection '
            'has none per location of a feature or score map (labels exist per box, and reach '
            "anchors only through the head's target assignment); use a label-free loss on "
            "'cls_scores' or the neck instead (KDLoss, CWDLoss, PKDLoss, MSDCRDLoss, LFCCLoss)")


@MODELS.register_module()
class DistillDetector(DistillModel):
    """Distil an mmdet detector from a frozen teacher detector.

    Args:
        student: the student detector's model dict (any mmdet detector) or module.
        distill_cfg: see :class:`kdzoo.adapters.base.DistillModel`; ``teacher.config`` is an
            mmdet config (``'mmdet::...'`` or a file) whose ``model`` is used, or a model dict.
        data_preprocessor: the student's ``DetDataPreprocessor`` dict (``wrap`` passes it); by
            default the student's own.
    """

    RESERVED = RESERVED

    def __init__(self, student, distill_cfg, data_preprocessor=None, init_cfg=None):
        if isinstance(student, dict) and data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        super().__init__(student, distill_cfg, data_preprocessor, init_cfg)
        self.student_head = dense_head_name(self.student)
        self.teacher_head = dense_head_name(self.teacher)
        self.student_names = self.distiller.readout_names['student']  # [] or ['cls_scores']
        teacher_taps = self.distiller.tap_names['teacher']
        self.teacher_runs_head = self.teacher_head is not None and any(
            t == 'cls_scores' or t.startswith(self.teacher_head + '.') or t == self.teacher_head
            for t in teacher_taps)

    def build_model(self, cfg):
        return build_mmdet(cfg)

    def check_pair(self, items, student, teacher):
        check_no_labels_needed(items)
        check_cls_scores(items, student, teacher)
        check_levels(items, student, teacher)

    def student_readout_paths(self, student, items):
        """The dense head when an item reads ``'cls_scores'``: its output is recorded during
        the student's own loss (no second forward)."""
        wants_scores = any('cls_scores' in item.student for item in items)
        return [dense_head_name(student)] if wants_scores else []

    def teacher_step(self, inputs):
        """Teacher features (and dense head when needed): ``{'cls_scores': ...}`` readouts."""
        feats = self.teacher.extract_feat(inputs)
        if not self.teacher_runs_head:
            return {}
        return {'cls_scores': getattr(self.teacher, self.teacher_head)(feats)[0]}

    def student_step(self, inputs, data_samples):
        """The student's own ``loss`` (one forward), its dense head's output recorded on the way
        (by the distiller's taps: call it inside ``distiller.step()``)."""
        losses = self.student.loss(inputs, data_samples)
        if not self.student_names:
            return losses, {}
        outputs = self.distiller.student_taps.get(self.student_head)
        outputs = outputs[0] if isinstance(outputs, list) else outputs  # first call if several
        return losses, {'cls_scores': outputs[0]}

    def run_model(self, model, inputs, data_samples, mode):
        return model(inputs, data_samples, mode=mode)
