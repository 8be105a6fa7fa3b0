"""mmseg adapter: the distilling segmentor and the generated segmentation set.

Registered in kdzoo's ``MODELS`` (reached from an mmseg config as ``'kdzoo.DistillSegmentor'``):
:class:`DistillSegmentor`; in mmseg's ``DATASETS``: :class:`ShapesSegDataset`.
:func:`export_state_dict` gives the student's weights for ``mmseg.apis.init_model``
(``tools/export_student.py``).
"""
from .data import ShapesSegDataset, make_seg_dataset
from .distill import RESERVED, DistillSegmentor, export_state_dict

__all__ = ['DistillSegmentor', 'ShapesSegDataset', 'make_seg_dataset', 'RESERVED',
           'export_state_dict']
