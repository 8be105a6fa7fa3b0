"""mmdet adapter: distil any mmdet detector from another.

Registered in kdzoo's ``MODELS``: ``DistillDetector`` (``type='kdzoo.DistillDetector'`` resolves
under ``default_scope='mmdet'``). :func:`export_state_dict` gives the student's weights for
``tools/export_student.py``. mmdet's own ``CocoDataset`` reads the generated COCO-format set;
``CLASSES`` and ``make_det_dataset`` are :mod:`kdzoo.toydata.det`'s, re-exported here.
"""
from mmdet.utils import register_all_modules

from kdzoo.toydata.det import CLASSES, make_det_dataset

from .distill import RESERVED, DistillDetector

register_all_modules(init_default_scope=False)


def export_state_dict(state_dict):
    """The student detector's state dict, as it is: its keys are the plain mmdet model's
    (``backbone.*``, ``neck.*``, ``bbox_head.*``), so the export loads with
    ``mmdet.apis.init_detector(student_config, checkpoint)``."""
    return dict(state_dict)


__all__ = ['DistillDetector', 'RESERVED', 'CLASSES', 'make_det_dataset', 'export_state_dict']
