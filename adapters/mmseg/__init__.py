"""mmseg adapter: the distilling segmentor and the dataset class of the generated set.

Registered in kdzoo's ``MODELS`` (reached from an mmseg config as ``'kdzoo.DistillSegmentor'``):
:class:`DistillSegmentor`; in mmseg's ``DATASETS``: :class:`ShapesSegDataset`.
:func:`export_state_dict` gives the student's weights for ``mmseg.apis.init_model``
(``kdzoo export``). :data:`TASK`: the task's descriptor (:mod:`kdzoo.tasks`,
``'seg'``), registered on import. ``make_seg_dataset`` is :func:`kdzoo.toydata.make_seg_dataset`,
re-exported here.
"""
from kdzoo.toydata.seg import make_seg_dataset

from .data import ShapesSegDataset
from .distill import RESERVED, DistillSegmentor, export_state_dict
from .task import TASK

__all__ = ['DistillSegmentor', 'ShapesSegDataset', 'make_seg_dataset', 'RESERVED',
           'export_state_dict', 'TASK']
