"""Classification adapter: timm classifiers for MMEngine, distillation wrapper, data, metric.

Registered in kdzoo's ``MODELS``: ``TimmClassifier``, ``DistillClassifier``,
``ClsDataPreprocessor``; in MMEngine's ``DATASETS``: ``ImageFolderCls``, ``Cifar100Cls``,
``TinyImageNetCls``; in MMEngine's ``METRICS``: ``Accuracy`` (key ``cls/top1``).
:func:`export_state_dict` turns a classifier's state dict into plain timm keys
(``kdzoo export``). :data:`TASK`: the task's descriptor (:mod:`kdzoo.tasks`,
``'cls'``), registered on import.
``make_shapes_dataset`` is :func:`kdzoo.toydata.make_shapes_dataset`, re-exported here.
"""
from kdzoo.toydata.cls import make_shapes_dataset

from .data import Cifar100Cls, ImageFolderCls
from .distill import DistillClassifier
from .metric import Accuracy
from .model import RESERVED, ClsDataPreprocessor, TimmClassifier, export_state_dict
from .task import TASK
from .tiny_imagenet import TinyImageNetCls

__all__ = ['TimmClassifier', 'DistillClassifier', 'ClsDataPreprocessor', 'ImageFolderCls',
           'Cifar100Cls', 'TinyImageNetCls', 'make_shapes_dataset', 'Accuracy', 'RESERVED',
           'export_state_dict', 'TASK']
