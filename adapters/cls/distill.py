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
``with model.predicting_with_teacher():`` (the teacher check hook uses that).
"""
import torch
from mmengine.model import BaseModel

from kdzoo.distiller import Distiller
from kdzoo.registry import MODELS, build
from kdzoo.teacher import build_teacher

from ..base import DistillModelMixin, check_same_classes, taps_of
from .model import LOGIT_READOUTS, RESERVED, ClsDataPreprocessor, check_mode, predictions


def check_num_classes(items, student, teacher):
    """An item pairing logits with logits needs the same classes on both sides."""
    check_same_classes(
        items, LOGIT_READOUTS, student.num_classes, teacher.num_classes,
        "Use a teacher trained on the student's classes, or set distill_cfg.teacher.cfg_options="
        f'dict(num_classes={student.num_classes}) (with strict=False the teacher head is then '
        're-initialised, so it must be fine-tuned first).')


@MODELS.register_module()
class DistillClassifier(DistillModelMixin, BaseModel):
    """Distil a :class:`TimmClassifier` student from a frozen teacher.

    Args:
        student: a ``TimmClassifier`` config dict or module.
        distill_cfg: ``dict(teacher=dict(config=..., checkpoint=..., cfg_options=..., strict=True),
            losses=[...], connectors=dict(...), teacher_check=True)``; ``teacher.config`` is a model
            dict or a config file whose ``model`` is used. ``teacher_check`` is read by
            ``kdzoo.adapters.wrap`` (the hook), not here.
        data_preprocessor: defaults to :class:`ClsDataPreprocessor`.
    """

    def __init__(self, student, distill_cfg, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor or ClsDataPreprocessor(),
                         init_cfg=init_cfg)
        student = student if isinstance(student, torch.nn.Module) else build(student)
        teacher = build_teacher(distill_cfg['teacher'], build_model=build)
        losses = list(distill_cfg['losses'])
        check_num_classes(losses, student, teacher)
        self.distiller = Distiller(student, teacher, losses, distill_cfg.get('connectors'),
                                   student_readouts=RESERVED, teacher_readouts=RESERVED)
        self.student_names = ['logits'] + [t for item in losses for t in taps_of(item)[0]
                                           if t in RESERVED and t != 'logits']
        self.teacher_names = [taps_of(item)[1] for item in losses if taps_of(item)[1] in RESERVED]
        student.check_readouts(self.student_names)
        teacher.check_readouts(self.teacher_names)

    def step_readouts(self, inputs):
        """Arm the taps and run both models once: ``(student readouts, teacher readouts)``."""
        self.distiller.start()
        student = self.student.readouts(inputs, self.student_names)
        teacher = self.distiller.run_teacher(self.teacher.readouts, inputs, self.teacher_names)
        return student, teacher

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            student, teacher = self.step_readouts(inputs)
            losses = self.student.loss(student['logits'], data_samples)
            losses.update(self.distiller.distill_losses(student, teacher, target=data_samples))
            return losses
        check_mode(self, mode)
        if self.use_teacher:
            logits = self.distiller.run_teacher(self.teacher, inputs)
        else:
            logits = self.student(inputs)
        return logits if mode == 'tensor' else predictions(logits, data_samples)

    def describe_step(self, inputs, data_samples=None):
        """One line per distill item (taps, shapes, connector, loss value) for ``--dry-run``."""
        with torch.no_grad():
            student, teacher = self.step_readouts(inputs)
            return self.distiller.describe(student, teacher, target=data_samples)

    def student_state_dict(self):
        """The student's weights with plain timm keys (for ``timm.create_model(...)``)."""
        return self.student.model.state_dict()
