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
the dense head; one elsewhere (an R-CNN ``roi_head``) is refused at build time. Also checked at
build time: paired levels (same count, same strides unless the item says ``resize=True``),
``'cls_scores'`` pairs (same anchors and classes), ``KDLoss`` on a sigmoid or multi-anchor head's
``'cls_scores'`` (``KDLoss(sigmoid=True)`` instead), and the teacher's classes against the
student's data (:mod:`kdzoo.adapters.labels`). Teacher and student may be different detector
types; each keeps its own input normalisation (the student's normalised batch is converted to the
teacher's mean / std / channel order). ``predict`` / ``tensor`` run the student, or the teacher
inside ``predicting_with_teacher()``. Losses that need a class label per location (``DKDLoss``,
``OFALoss``) are refused at build time: a detector has no such label before its heads assign
targets to anchors. Building, initialisation, mode dispatch and ``describe_step`` are the
skeleton's (:mod:`kdzoo.adapters.base`).
"""
import warnings

import torch
from mmengine.registry import DefaultScope

from kdzoo.registry import MODELS

from ..base import DistillModel, label_using, loss_class
from ..labels import data_labels

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


def check_levels(items, student, teacher, key='distill_cfg.teacher'):
    """Level-wise items need the same number of levels on both sides: fail at build time."""
    for item in items:
        if len(item.student) != 1:
            continue
        s_levels = num_levels(student, item.student[0])
        t_levels = num_levels(teacher, item.teacher)
        if s_levels is not None and t_levels is not None and s_levels != t_levels:
            raise ValueError(
                f'distill item {item.index}: student {item.student[0]!r} of '
                f'{type(student).__name__} gives {s_levels} levels but teacher {item.teacher!r} '
                f'of {type(teacher).__name__} gives {t_levels}; levels are paired one to one '
                '(level i with level i), so give both the same number of FPN levels '
                f"(neck.num_outs, and the head's strides), e.g. with {key}.cfg_options")


def predicted_classes(detector):
    """The number of object classes a detector predicts: its R-CNN box head's (two-stage: the
    RPN's one class is objectness), else its ``bbox_head``'s; ``None`` when it says none."""
    roi_head = getattr(detector, 'roi_head', None)
    head = getattr(roi_head, 'bbox_head', None) or getattr(detector, 'bbox_head', None)
    if isinstance(head, torch.nn.ModuleList):  # cascade stages: every stage has the classes
        head = head[-1]
    return getattr(head, 'num_classes', None)


def teacher_parts(teacher):
    """The top-level parts of a detector kdzoo's teacher step runs: ``extract_feat`` (backbone,
    neck) and the dense head."""
    head = dense_head_name(teacher)
    return ['backbone'] + (['neck'] if getattr(teacher, 'with_neck', False) else []) + (
        [head] if head else [])


def check_teacher_taps_run(items, teacher):
    """A teacher tap must sit in a part the teacher step runs; one elsewhere (an R-CNN
    ``roi_head``) would record nothing, so it is refused when the model is built."""
    runs = teacher_parts(teacher)
    children = dict(teacher.named_children())
    for item in items:
        part = item.teacher.split('.')[0]
        if item.teacher == 'cls_scores' or part in runs or part not in children:
            continue  # a path that is no module at all: the taps' own error lists close ones
        raise ValueError(
            f"distill item {item.index}: teacher tap {item.teacher!r} is inside {part!r}, which "
            f"kdzoo's detection teacher does not run: the teacher step runs only {runs} of "
            f'{type(teacher).__name__} (extract_feat and the dense head, without grad); an '
            "R-CNN roi_head would need the teacher's own proposals and sampling, so it is not "
            "run (docs/distill_cfg.md). Tap one of those parts instead ('neck' for the FPN "
            "levels, 'cls_scores' for the dense head's class maps)")


def is_class_map(detector, tap):
    """Whether ``tap`` gives the dense head's class maps: ``'cls_scores'`` or the head's own
    classification conv (``bbox_head.retina_cls``, ``conv_cls``, ``gfl_cls``, ``rpn_cls``)."""
    if tap == 'cls_scores':
        return True
    head, _, child = tap.partition('.')
    module = getattr(getattr(detector, head, None), child, None) if child else None
    return (head == dense_head_name(detector) and child.endswith('_cls')
            and isinstance(module, torch.nn.Conv2d))


def score_layout(detector):
    """``(anchors per location, classes, channels per anchor)`` of the dense head's class maps."""
    head = getattr(detector, dense_head_name(detector))
    return (getattr(head, 'num_base_priors', 1), head.num_classes, head.cls_out_channels)


def check_class_scores(items, student, teacher):
    """Class maps (``'cls_scores'``, the head's classification conv) paired with class maps
    compare channel ``a·K + c`` (anchor ``a``,
    class ``c``) with the same channel: both heads need the same anchors and classes. No connector
    mends other classes (a Projector would learn a mix of anchors and classes), so it is refused
    when the model is built, saying what a valid pairing is."""
    for item in items:
        if len(item.student) != 1 or not (is_class_map(student, item.student[0])
                                          and is_class_map(teacher, item.teacher)):
            continue
        (s_anchors, s_classes, s_out), (t_anchors, t_classes, t_out) = (
            score_layout(student), score_layout(teacher))
        if (s_anchors, s_classes, s_out) == (t_anchors, t_classes, t_out):
            continue
        raise ValueError(
            f'distill item {item.index}: student {item.student[0]!r} of {type(student).__name__} '
            f'holds {s_anchors} anchors x {s_classes} classes per location '
            f'({s_anchors * s_out} channels) but teacher {item.teacher!r} of '
            f'{type(teacher).__name__} holds {t_anchors} x {t_classes} ({t_anchors * t_out} '
            'channels); class scores are compared channel by '
            'channel (anchor a, class c with anchor a, class c), and no connector turns one set '
            f'of classes into another (a Projector {s_anchors * s_out} -> {t_anchors * t_out} '
            'would learn a mix of anchors and classes). A valid pairing: a teacher trained on '
            "the student's classes (the same num_classes and class list) with the same anchors "
            "per location (its head's anchor_generator); otherwise distil the FPN levels "
            "(student='neck', teacher='neck')")


def level_strides(detector, tap):
    """The strides of the levels ``tap`` gives (``None`` when unknown): the dense head's prior
    strides for ``'cls_scores'`` and paths inside the dense head, and for a neck whose number of
    levels is the head's (the neck feeds the head)."""
    head_name = dense_head_name(detector)
    head = getattr(detector, head_name) if head_name else None
    strides = getattr(getattr(head, 'prior_generator', None), 'strides', None)
    if not strides:
        return None
    strides = [s[0] if isinstance(s, (tuple, list)) and s[0] == s[1] else s for s in strides]
    if tap == 'cls_scores' or tap.split('.')[0] == head_name:
        return strides
    return strides if num_levels(detector, tap) == len(strides) else None


def check_strides(items, student, teacher, key='distill_cfg.teacher'):
    """Levels are paired one to one: paired levels of other strides are an error, or, with the
    item's ``resize=True``, a warning naming the strides (each pair is then compared on one
    grid)."""
    for item in items:
        if len(item.student) != 1:
            continue
        s_strides = level_strides(student, item.student[0])
        t_strides = level_strides(teacher, item.teacher)
        if s_strides is None or t_strides is None or s_strides == t_strides:
            continue
        pairs = f'student {item.student[0]!r} levels at strides {s_strides} ' \
                f'({type(student).__name__}) with teacher {item.teacher!r} levels at strides ' \
                f'{t_strides} ({type(teacher).__name__})'
        if item.resize:
            warnings.warn(f'distill item {item.index} ({item.name!r}, resize=True): pairs {pairs}, '
                          'level by level, each pair resized to one grid', stacklevel=2)
            continue
        raise ValueError(
            f'distill item {item.index}: would pair {pairs}; levels are paired one to one (level i '
            'with level i), so maps of other strides would be resized onto each other. Give '
            "the teacher the student's strides (its neck's start_level / num_outs and its "
            f"head's prior_generator strides, with {key}.cfg_options), or set "
            'resize=True on the item to pair them resized (a warning names the strides)')


def check_level_grids(distiller, student_readouts, teacher_readouts):
    """Paired levels must lie on the same grid: student and teacher see the same images, so a
    level of another height or width is at another stride, whatever the heads' prior generators
    declare (:func:`check_strides` reads those at build; a teacher whose neck is fed from other
    backbone stages than its head assumes is only seen here, on the first batch). An error unless
    the item says ``resize=True``."""
    with torch.no_grad():
        for item in distiller.items:
            if item.resize or len(item.student) != 1:
                continue
            pairs = distiller.item_values(item, student_readouts, teacher_readouts)
            grids = [(tuple(s.shape[-2:]), tuple(t.shape[-2:])) for s, t in pairs]
            if len(pairs) < 2 or all(s == t for s, t in grids):
                continue
            raise ValueError(
                f'distill item {item.index}: student {item.student[0]!r} levels have grids '
                f'{[list(s) for s, _ in grids]} but teacher {item.teacher!r} levels '
                f'{[list(t) for _, t in grids]} on the same images: the paired levels are at '
                'other strides (e.g. a teacher neck fed from other backbone stages than its '
                "head's prior_generator strides say), and would be resized onto each other. Give "
                "the teacher the student's strides (its backbone's out_indices and neck's "
                "in_channels / start_level, with that teacher's cfg_options), or set "
                'resize=True on the item to pair them resized')


def check_cls_scores(items, student, teacher):
    """``'cls_scores'`` needs a dense head (one-stage ``bbox_head`` or two-stage ``rpn_head``)."""
    for item in items:
        for side, detector, taps in (('student', student, item.student),
                                     ('teacher', teacher, [item.teacher])):
            if 'cls_scores' in taps and dense_head_name(detector) is None:
                raise ValueError(
                    f"distill item {item.index}: {side} tap 'cls_scores' needs a dense head "
                    '(bbox_head of a one-stage detector or rpn_head of a two-stage one), but '
                    f"{type(detector).__name__} has none; tap a module path instead (e.g. 'neck')")


def check_no_labels_needed(items):
    """Detection has no class label per location before target assignment: a loss that needs
    ``target`` (DKD, OFA) cannot be given one, so it is refused when the model is built."""
    for index, name in label_using(items):
        raise ValueError(
            f'distill item {index}: {name} needs a ground-truth class per sample, but detection '
            'has none per location of a feature or score map (labels exist per box, and reach '
            "anchors only through the head's target assignment); use a label-free loss instead: "
            "on 'cls_scores' (every anchor's class scores) KDLoss(sigmoid=True) for a sigmoid "
            'head (RetinaNet, FCOS, ATSS, GFL, an RPN), CWDLoss or MSELoss; on the neck PKDLoss, '
            'CWDLoss, MSDCRDLoss or LFCCLoss (docs/distill_cfg.md)')


def check_score_softmax(items, student, teacher):
    """``KDLoss`` takes one softmax over the channels of its input; on ``'cls_scores'`` of a head
    that scores several anchors per location, or every class by a sigmoid, that softmax mixes
    anchors and classes: refused when the model is built, with a loss that treats each anchor's
    classes as the head does."""
    from kdzoo.losses.kd import KDLoss
    for item in items:
        if loss_class(item) is not KDLoss or item.loss.get('sigmoid', False):
            continue
        for side, detector, taps in (('student', student, item.student),
                                     ('teacher', teacher, [item.teacher])):
            tap = next((t for t in taps if is_class_map(detector, t)), None)
            if tap is None:
                continue
            head = getattr(detector, dense_head_name(detector))
            anchors, classes, _ = score_layout(detector)
            sigmoid = bool(getattr(head, 'use_sigmoid_cls', False))
            if not sigmoid and anchors == 1:
                continue  # one softmax over one anchor's classes: the head's own
            scoring = 'a sigmoid per class' if sigmoid else 'a softmax per anchor'
            fix = ('KDLoss(sigmoid=True) (a binary KD of every anchor\'s every class, as the '
                   'head scores them), CWDLoss or MSELoss' if sigmoid else 'CWDLoss or MSELoss')
            raise ValueError(
                f'distill item {item.index}: KDLoss takes one softmax over the channels of {side} '
                f"{tap!r}, but {type(detector).__name__}'s dense head gives {anchors} "
                f'anchors x {classes} classes per location and scores them with {scoring}: the '
                'softmax would compare one distribution over anchors and classes together, '
                f'which neither head predicts. Use {fix} (docs/distill_cfg.md)')


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
    LOGIT_READOUTS = ('cls_scores',)

    def __init__(self, student, distill_cfg, data_preprocessor=None, init_cfg=None,
                 student_data=None):
        if isinstance(student, dict) and data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        super().__init__(student, distill_cfg, data_preprocessor, init_cfg, student_data)
        self.student_head = dense_head_name(self.student)
        self.student_names = self.distiller.readout_names['student']  # [] or ['cls_scores']
        self.teacher_heads = {name: dense_head_name(t) for name, t in self.teachers.items()}
        # a teacher's dense head runs only when one of its taps needs it
        self.teacher_runs_head = {
            name: head is not None and any(
                t == 'cls_scores' or t.startswith(head + '.') or t == head
                for t in self.distiller.tap_names['teachers'][name])
            for name, head in self.teacher_heads.items()}
        self.grids_checked = False

    def build_model(self, cfg):
        return build_mmdet(cfg)

    def check_pair(self, items, student, teacher, key):
        check_no_labels_needed(items)
        check_teacher_taps_run(items, teacher)
        check_cls_scores(items, student, teacher)
        check_class_scores(items, student, teacher)
        check_score_softmax(items, student, teacher)
        check_levels(items, student, teacher, key)
        check_strides(items, student, teacher, key)

    def data_labels(self, dataset_cfg, source):
        from mmdet.registry import DATASETS
        return data_labels(dataset_cfg, DATASETS, source)

    def teacher_classes(self, teacher):
        return predicted_classes(teacher)

    def student_readout_paths(self, student, items):
        """The dense head when an item reads ``'cls_scores'``: its output is recorded during
        the student's own loss (no second forward)."""
        wants_scores = any('cls_scores' in item.student for item in items)
        return [dense_head_name(student)] if wants_scores else []

    def teacher_step(self, name, inputs):
        """Teacher ``name``'s features (and dense head when needed): ``{'cls_scores': ...}``
        readouts."""
        teacher = self.teachers[name]
        feats = teacher.extract_feat(inputs)
        if not self.teacher_runs_head[name]:
            return {}
        return {'cls_scores': getattr(teacher, self.teacher_heads[name])(feats)[0]}

    def recorded_step(self, inputs, data_samples):
        """The skeleton's step; on the first one, the paired levels' grids are checked
        (:func:`check_level_grids`)."""
        losses, student, teacher = super().recorded_step(inputs, data_samples)
        if not self.grids_checked:
            check_level_grids(self.distiller, student, teacher)
            self.grids_checked = True
        return losses, student, teacher

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
