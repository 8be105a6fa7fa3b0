"""``DistillSegmentor``: an mmseg ``EncoderDecoder`` student, a frozen teacher segmentor of any
family and a :class:`kdzoo.distiller.Distiller`.

Built by ``kdzoo.adapters.wrap`` from an mmseg config with ``distill_cfg`` (docs/distill_cfg.md)::

    model = dict(type='kdzoo.DistillSegmentor',
                 student=<the config's EncoderDecoder dict>,
                 distill_cfg=dict(
                     teacher=dict(config='mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_'
                                         '8xb2-160k_ade20k-512x512.py',
                                  checkpoint='upernet_swin_tiny_ade20k.pth'),
                     losses=[dict(student='logits', teacher='logits',
                                  loss=dict(type='MSDCRDLoss'))]),
                 data_preprocessor=<the student's SegDataPreProcessor dict>)

Reserved readouts (:data:`RESERVED`): ``'logits'``, the decode head's class-logit map before it
is resized to the image (``(B, K, H/4, W/4)`` for UPerNet, ``H/8`` for d8 models: the losses
align the grids through :mod:`kdzoo.layout`), and ``'stage1'..'stage4'``, the backbone's i-th
output. Any module path of the segmentor (``'decode_head.bottleneck'``) is a tap too.

Training loss: the student's own losses (``decode.loss_ce``, ``aux.loss_ce``) from one student
forward (backbone, neck, decode head once), plus ``distill.loss_<name>`` per item. ``predict`` /
``tensor`` run the student, or the teacher inside ``with model.predicting_with_teacher():``
(the teacher check hook). The teacher gets the batch in its own normalisation; label-using losses
get the full-resolution label maps ``(B, H, W)`` as ``target`` and the student's own
``decode_head.ignore_index`` as ``ignore_index`` (the pixels its loss skips, padding labelled
``seg_pad_val`` included when the two agree; a warning at build time when they do not). Building,
initialisation, mode dispatch and ``describe_step`` are the skeleton's (:mod:`kdzoo.adapters.base`).
"""
import warnings

import torch
from mmengine.registry import DefaultScope
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import DATASETS as SEG_DATASETS
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.utils import add_prefix

from kdzoo.registry import MODELS
from kdzoo.tasks import STAGES
from kdzoo.teacher_names import side_name

from ..base import DistillModel, check_same_classes, label_using
from ..labels import data_labels

RESERVED = ('logits',) + STAGES


def build_mmseg(cfg):
    """Build an mmseg model dict (``EncoderDecoder``, ``SegDataPreProcessor``) in mmseg's scope,
    whatever the caller's default scope; an ``nn.Module`` is returned as it is."""
    if isinstance(cfg, torch.nn.Module):
        return cfg
    with DefaultScope.overwrite_default_scope('mmseg'):
        return SEG_MODELS.build(cfg)


def check_segmentor(model, side):
    """The adapter runs ``backbone`` (+ ``neck``) + one ``decode_head``: an ``EncoderDecoder``."""
    head = getattr(model, 'decode_head', None)
    if not hasattr(model, 'backbone') or not isinstance(head, BaseDecodeHead):
        raise ValueError(
            f'the {side} must be an mmseg EncoderDecoder with one decode head, got '
            f'{type(model).__name__} (decode_head: {type(head).__name__})')


def check_num_classes(items, student, teacher, key='distill_cfg.teacher'):
    """An item pairing logit maps needs the same classes on both sides (``key``: where the
    teacher is set)."""
    s_classes = student.decode_head.num_classes
    check_same_classes(
        items, ('logits',), s_classes, teacher.decode_head.num_classes,
        f"Use a teacher trained on the student's classes ({key}.cfg_options="
        f"{{'decode_head.num_classes': {s_classes}}} re-initialises its head, so it must be "
        'fine-tuned first), or distil features (stage taps) instead.')


def check_padding_label(items, student, preprocessor):
    """Padded pixels are labelled ``seg_pad_val``; a label-using loss skips only the student's
    ``ignore_index``, so when the two differ padding is trained as a class: warn at build time."""
    pad = getattr(preprocessor, 'seg_pad_val', None)
    ignore = student.decode_head.ignore_index
    using = label_using(items)
    if using and pad is not None and pad != ignore:
        classes = student.decode_head.num_classes
        effect = (f'are trained as class {pad} (by the student\'s own loss too)' if pad < classes
                  else f'carry a label outside the student\'s {classes} classes (its own loss '
                  'and the items fail on them at the first padded batch)')
        warnings.warn(
            f'distill items {[index for index, _ in using]} ({", ".join(n for _, n in using)}) '
            f'use labels: they skip the student\'s decode_head.ignore_index={ignore}, but the data '
            f'preprocessor pads label maps with seg_pad_val={pad}, so padded pixels {effect}; '
            f'set seg_pad_val={ignore} in the data preprocessor', stacklevel=2)


def run_segmentor(model, inputs, decode=True):
    """One forward of an ``EncoderDecoder`` through ``__call__`` (so taps record):
    ``(backbone outputs, neck outputs, decode-head logits or None)``."""
    stages = model.backbone(inputs)
    feats = model.neck(stages) if model.with_neck else stages
    logits = model.decode_head(feats) if decode else None
    return stages, feats, logits


def readouts(stages, logits, names, side):
    """The reserved readouts ``names`` from one forward."""
    out = {}
    for name in names:
        if name == 'logits':
            out[name] = logits
            continue
        index = STAGES.index(name)
        if index >= len(stages):
            raise ValueError(f'{side} tap {name!r}: the backbone returns {len(stages)} outputs '
                             f'(set its out_indices), not {index + 1}')
        out[name] = stages[index]
    return out


def label_maps(data_samples):
    """The batch's ground-truth label maps ``(B, H, W)`` (long; the dataset's ignored label, and
    the data preprocessor's ``seg_pad_val`` where padded)."""
    return torch.stack([sample.gt_sem_seg.data[0] for sample in data_samples]).long()


@MODELS.register_module()
class DistillSegmentor(DistillModel):
    """Distil an mmseg ``EncoderDecoder`` student from a frozen teacher segmentor.

    Args:
        student: the student's model dict (built by mmseg's ``MODELS``) or module.
        distill_cfg: see :class:`kdzoo.adapters.base.DistillModel`; ``teacher.config`` is an
            mmseg config (``'mmseg::...'`` or a path) whose ``model`` is used, or a model dict.
        data_preprocessor: a ``SegDataPreProcessor`` dict; defaults to the student's own.
    """

    RESERVED = RESERVED
    LOGIT_READOUTS = ('logits',)

    def __init__(self, student, distill_cfg, data_preprocessor=None, init_cfg=None,
                 student_data=None):
        super().__init__(student, distill_cfg, data_preprocessor, init_cfg, student_data)
        # the pixels the student's own loss skips are the ones the label-using losses skip
        self.ignore_index = self.student.decode_head.ignore_index
        check_padding_label(self.distiller.items, self.student, self.data_preprocessor)
        self.student_names = sorted(self.distiller.readout_names['student'])
        self.teacher_names = {name: sorted(names) for name, names
                              in self.distiller.readout_names['teachers'].items()}
        # a teacher's decode head runs only when a tap needs it (stage-only items skip it)
        self.teacher_decodes = {
            name: 'logits' in taps or not set(taps) <= set(STAGES)
            for name, taps in self.distiller.tap_names['teachers'].items()}

    def build_model(self, cfg):
        return build_mmseg(cfg)

    def check_pair(self, items, student, teacher, key):
        check_segmentor(student, 'student')
        check_segmentor(teacher, 'teacher' if key == 'distill_cfg.teacher' else f'teacher ({key})')
        check_num_classes(items, student, teacher, key)

    def data_labels(self, dataset_cfg, source):
        return data_labels(dataset_cfg, SEG_DATASETS, source, encodes=True)

    def teacher_classes(self, teacher):
        return teacher.decode_head.num_classes

    def teacher_step(self, name, inputs):
        stages, _, logits = run_segmentor(self.teachers[name], inputs, self.teacher_decodes[name])
        return readouts(stages, logits, self.teacher_names[name], side_name(name))

    def student_step(self, inputs, data_samples):
        """One student forward: ``(its losses, its readouts)``; the decode head runs once unless
        it overrides ``loss`` (then its loss comes from its own ``loss``)."""
        student = self.student
        stages, feats, logits = run_segmentor(student, inputs)
        head = student.decode_head
        if type(head).loss is BaseDecodeHead.loss:
            decode = head.loss_by_feat(logits, data_samples)
        else:
            decode = head.loss(feats, data_samples, student.train_cfg)
        losses = add_prefix(decode, 'decode')
        if student.with_auxiliary_head:
            losses.update(student._auxiliary_head_forward_train(feats, data_samples))
        return losses, readouts(stages, logits, self.student_names, 'student')

    def run_model(self, model, inputs, data_samples, mode):
        if mode == 'predict':
            return model.predict(inputs, data_samples)
        return model._forward(inputs, data_samples)

    def targets(self, data_samples):
        return label_maps(data_samples)


def export_state_dict(state_dict):
    """The student's ``EncoderDecoder`` state dict as it is (``mmseg.apis.init_model`` loads it)."""
    return dict(state_dict)
