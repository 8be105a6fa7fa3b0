"""mmdet adapter: distil any mmdet detector from another.

Registered in kdzoo's ``MODELS``: ``DistillDetector`` (``type='kdzoo.DistillDetector'`` resolves
under ``default_scope='mmdet'``). :func:`export_state_dict` gives the student's weights for
``kdzoo export``. :data:`TASK`: the task's descriptor (:mod:`kdzoo.tasks`, ``'det'``),
registered on import. mmdet's own ``CocoDataset`` reads the generated COCO-format set;
``CLASSES`` and ``make_det_dataset`` are :mod:`kdzoo.toydata.det`'s, re-exported here.
"""
from mmdet.utils import register_all_modules

from kdzoo.toydata.det import CLASSES, make_det_dataset

from .distill import RESERVED, DistillDetector
from .task import TASK, export_state_dict

register_all_modules(init_default_scope=False)

__all__ = ['DistillDetector', 'RESERVED', 'CLASSES', 'make_det_dataset', 'export_state_dict',
           'TASK']
