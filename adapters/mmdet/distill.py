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

Training step: the student's own ``loss`` (one forward; the taps record in it, ``cls_scores`` is
read from the dense head's output), then the teacher's ``extract_feat`` (and its dense head when a
teacher item needs it) under ``torch.no_grad()``, then ``distill.loss_<name>`` per item. Teacher
taps therefore live in the backbone, the neck or the dense head (not in an R-CNN ``roi_head``).
Teacher and student may be different detector types; each keeps its own input normalisation
(the student's normalised batch is converted to the teacher's mean / std / channel order).
``predict`` / ``tensor`` run the student, or the teacher inside ``predicting_with_teacher()``.
"""
import torch
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope

from kdzoo.distiller import Distiller
from kdzoo.registry import MODELS
from kdzoo.taps import Taps
from kdzoo.teacher import build_teacher

from ..base import DistillModelMixin, taps_of

RESERVED = ('cls_scores',)


def build_mmdet(cfg):
    """Build an mmdet model (detector, data preprocessor) from ``cfg``, in the mmdet scope."""
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
        student_taps, teacher_tap = taps_of(item)
        if len(student_taps) != 1:
            continue
        s_levels = num_levels(student, student_taps[0])
        t_levels = num_levels(teacher, teacher_tap)
        if s_levels is not None and t_levels is not None and s_levels != t_levels:
            raise ValueError(
                f'distill item {index}: student {student_taps[0]!r} of {type(student).__name__} '
                f'gives {s_levels} levels but teacher {teacher_tap!r} of {type(teacher).__name__} '
                f'gives {t_levels}; levels are paired one to one (level i with level i), so give '
                'both the same number of FPN levels (neck.num_outs, and the head\'s strides), e.g. '
                'with distill_cfg.teacher.cfg_options')


def check_cls_scores(items, student, teacher):
    """``'cls_scores'`` needs a dense head (one-stage ``bbox_head`` or two-stage ``rpn_head``)."""
    for index, item in enumerate(items):
        student_taps, teacher_tap = taps_of(item)
        for side, detector, taps in (('student', student, student_taps),
                                     ('teacher', teacher, [teacher_tap])):
            if 'cls_scores' in taps and dense_head_name(detector) is None:
                raise ValueError(
                    f"distill item {index}: {side} tap 'cls_scores' needs a dense head (bbox_head "
                    f'of a one-stage detector or rpn_head of a two-stage one), but '
                    f"{type(detector).__name__} has none; tap a module path instead (e.g. 'neck')")


def normalisation(preprocessor):
    """``(mean, std, channel flip)`` of a ``DetDataPreprocessor`` (``None`` mean/std: none)."""
    if getattr(preprocessor, '_enable_normalize', False):
        mean, std = preprocessor.mean, preprocessor.std
    else:
        mean = std = None
    return mean, std, bool(getattr(preprocessor, '_channel_conversion', False))


def same_normalisation(a, b):
    (mean_a, std_a, flip_a), (mean_b, std_b, flip_b) = a, b
    if flip_a != flip_b or (mean_a is None) != (mean_b is None):
        return False
    return mean_a is None or (torch.equal(mean_a.cpu(), mean_b.cpu())
                              and torch.equal(std_a.cpu(), std_b.cpu()))


def renormalise(inputs, source, target):
    """Turn a batch normalised as ``source`` into one normalised as ``target``.

    ``x = (raw - mean) / std`` after an optional BGR<->RGB flip; padding (zeros in ``source``)
    becomes ``(mean_s - mean_t) / std_t``, a constant the teacher sees at the border only.
    """
    mean_s, std_s, flip_s = source
    mean_t, std_t, flip_t = target
    raw = inputs if mean_s is None else inputs * std_s + mean_s
    if flip_s != flip_t:
        raw = raw.flip(1)
    return raw if mean_t is None else (raw - mean_t) / std_t


@MODELS.register_module()
class DistillDetector(DistillModelMixin, BaseModel):
    """Distil an mmdet detector from a frozen teacher detector.

    Args:
        student: the student detector's model dict (any mmdet detector) or module.
        distill_cfg: ``dict(teacher=dict(config=..., checkpoint=..., cfg_options=..., strict=True),
            losses=[...], connectors=dict(...), teacher_check=True)``; ``teacher.config`` is an
            mmdet config (``'mmdet::...'`` or a file) whose ``model`` is used, or a model dict.
        data_preprocessor: the student's ``DetDataPreprocessor`` dict (``wrap`` passes it); by
            default the student's own.
    """

    def __init__(self, student, distill_cfg, data_preprocessor=None, init_cfg=None):
        if not isinstance(student, torch.nn.Module):
            data_preprocessor = data_preprocessor or student.get('data_preprocessor')
            student = build_mmdet(student)
        data_preprocessor = data_preprocessor or dict(type='DetDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = build_mmdet(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        teacher = build_teacher(distill_cfg['teacher'], build_model=build_mmdet)
        losses = list(distill_cfg['losses'])
        check_cls_scores(losses, student, teacher)
        check_levels(losses, student, teacher)
        self.distiller = Distiller(student, teacher, losses, distill_cfg.get('connectors'),
                                   student_readouts=RESERVED, teacher_readouts=RESERVED)
        self.student_head = dense_head_name(student)
        self.teacher_head = dense_head_name(teacher)
        wants_scores = any('cls_scores' in taps_of(item)[0] for item in losses)
        # the student's dense head output, recorded during its own loss (no second forward)
        self.head_taps = Taps(student, [self.student_head] if wants_scores else [], 'student')
        self.student_names = ['cls_scores'] if wants_scores else []
        teacher_taps = [taps_of(item)[1] for item in losses]
        self.teacher_runs_head = self.teacher_head is not None and any(
            t == 'cls_scores' or t.startswith(self.teacher_head + '.') or t == self.teacher_head
            for t in teacher_taps)
        self.teacher_norm = normalisation(teacher.data_preprocessor)

    def init_weights(self):
        """Initialise the student as mmdet would (pretrained backbone, head priors): the runner's
        ``init_weights`` does not reach it through the plain ``nn.Module`` distiller."""
        super().init_weights()
        if not getattr(self.student, 'is_init', False):
            self.student.init_weights()


    def teacher_inputs(self, inputs):
        """The batch as the teacher's own data preprocessor would have normalised it."""
        source = normalisation(self.data_preprocessor)
        if same_normalisation(source, self.teacher_norm):
            return inputs
        return renormalise(inputs, source, self.teacher_norm)

    def run_teacher(self, inputs):
        """Teacher features (and dense head when needed): ``{'cls_scores': ...}`` readouts."""
        feats = self.teacher.extract_feat(self.teacher_inputs(inputs))
        if not self.teacher_runs_head:
            return {}
        return {'cls_scores': getattr(self.teacher, self.teacher_head)(feats)[0]}

    def student_readouts(self):
        if not self.student_names:
            return {}
        outputs = self.head_taps.get(self.student_head)
        outputs = outputs[0] if isinstance(outputs, list) else outputs  # first call if several
        return {'cls_scores': outputs[0]}

    def step(self, inputs, data_samples):
        """Arm the taps, run the student's loss and the teacher:
        ``(student losses, student readouts, teacher readouts)``."""
        self.distiller.start()
        self.head_taps.start()
        try:
            losses = self.student.loss(inputs, data_samples)
            student = self.student_readouts()
        finally:
            self.head_taps.stop()
            self.head_taps.clear()
        teacher = self.distiller.run_teacher(self.run_teacher, inputs)
        return losses, student, teacher

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            losses, student, teacher = self.step(inputs, data_samples)
            losses.update(self.distiller.distill_losses(student, teacher,
                                                        data_samples=data_samples))
            return losses
        if mode not in ('predict', 'tensor'):
            raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')
        if self.use_teacher:
            return self.distiller.run_teacher(self.teacher, self.teacher_inputs(inputs),
                                              data_samples, mode=mode)
        return self.student(inputs, data_samples, mode=mode)

    def describe_step(self, inputs, data_samples=None):
        """One line per distill item (taps, shapes, connector, loss value) for ``--dry-run``."""
        with torch.no_grad():
            _, student, teacher = self.step(inputs, data_samples)
            return self.distiller.describe(student, teacher, data_samples=data_samples)
