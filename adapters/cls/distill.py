"""``DistillClassifier``: a timm student, a frozen teacher and a :class:`kdzoo.distiller.Distiller`.

Built by ``kdzoo.adapters.wrap`` from a config with ``distill_cfg`` (docs/distill_cfg.md)::

    model = dict(type='kdzoo.DistillClassifier',
                 student=dict(type='TimmClassifier', model_name='resnet18', num_classes=100),
                 distill_cfg=dict(
                     teacher=dict(config=dict(type='TimmClassifier', num_classes=100,
                                              model_name='vit_small_patch16_224', img_size=224),
                                  checkpoint='work_dirs/teacher/epoch_300.pth'),
                     losses=[dict(student='dense_logits', teacher='dense_logits',
                                  loss=dict(type='MSDCRDLoss'))]))

Training loss: ``loss_cls`` (the student's cross-entropy) plus ``distill.loss_<name>`` per item.
Taps are the reserved readouts of :mod:`kdzoo.adapters.cls.model` or module paths inside the
classifier (``'model.layer3'``). ``predict`` / ``tensor`` run the student, or the teacher inside
``with model.predicting_with_teacher():`` (the teacher check hook uses that). Building,
initialisation, mode dispatch and ``describe_step`` are the skeleton's (:mod:`kdzoo.adapters.base`).
"""
import torch

from kdzoo.registry import MODELS, build

from ..base import DistillModel, check_same_classes
from .model import LOGIT_READOUTS, RESERVED, ClsDataPreprocessor, predictions


def check_num_classes(items, student, teacher, key='distill_cfg.teacher'):
    """An item pairing logits with logits needs the same classes on both sides (``key``: where
    the teacher is set)."""
    check_same_classes(
        items, LOGIT_READOUTS, student.num_classes, teacher.num_classes,
        f"Use a teacher trained on the student's classes, or set {key}.cfg_options="
        f'dict(num_classes={student.num_classes}) (with strict=False the teacher head is then '
        're-initialised, so it must be fine-tuned first).')


@MODELS.register_module()
class DistillClassifier(DistillModel):
    """Distil a :class:`TimmClassifier` student from a frozen teacher.

    Args:
        student: a ``TimmClassifier`` config dict or module.
        distill_cfg: see :class:`kdzoo.adapters.base.DistillModel`; ``teacher.config`` is a model
            dict or a config file whose ``model`` is used.
        data_preprocessor: defaults to :class:`ClsDataPreprocessor` (no normalisation: each
            classifier resizes and normalises the ``[0, 255]`` batch itself, so the teacher
            always sees its own preprocessing).
    """

    RESERVED = RESERVED
    LOGIT_READOUTS = LOGIT_READOUTS

    def __init__(self, student, distill_cfg, data_preprocessor=None, init_cfg=None,
                 student_data=None):
        super().__init__(student, distill_cfg,
                         data_preprocessor=data_preprocessor or ClsDataPreprocessor(),
                         init_cfg=init_cfg, student_data=student_data)
        # 'logits' comes with every forward (the monitor's agreement reads it at no cost)
        readouts = self.distiller.readout_names
        self.student_names = ['logits'] + [t for t in readouts['student'] if t != 'logits']
        self.teacher_names = {name: ['logits'] + [t for t in taps if t != 'logits']
                              for name, taps in readouts['teachers'].items()}
        # checked once here; each step reads them unchecked (forward_readouts)
        self.student.check_readouts(self.student_names)
        for name, names in self.teacher_names.items():
            self.teachers[name].check_readouts(names)

    def build_model(self, cfg):
        return cfg if isinstance(cfg, torch.nn.Module) else build(cfg)

    def check_pair(self, items, student, teacher, key):
        check_num_classes(items, student, teacher, key)

    def teacher_classes(self, teacher):
        return teacher.num_classes

    def student_step(self, inputs, labels):
        readouts = self.student.forward_readouts(inputs, self.student_names)
        return self.student.loss(readouts['logits'], labels), readouts

    def teacher_step(self, name, inputs):
        return self.teachers[name].forward_readouts(inputs, self.teacher_names[name])

    def teacher_readout_names(self, name):
        return list(self.teacher_names[name])

    def run_model(self, model, inputs, labels, mode):
        logits = model(inputs)
        return logits if mode == 'tensor' else predictions(logits, labels)

    def targets(self, labels):
        return labels
