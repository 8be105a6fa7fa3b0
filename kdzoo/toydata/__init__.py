"""kdzoo.toydata: the generated data sets of the quick-starts and tests (numpy and PIL only).

- :func:`make_shapes_dataset` (:mod:`.cls`): classification, ImageFolder PNGs of patterned shapes.
- :func:`make_seg_dataset` (:mod:`.seg`): segmentation, mmseg's ``img_dir`` / ``ann_dir`` PNGs.
- :func:`make_det_dataset` (:mod:`.det`): detection, COCO json + PNGs, some images empty.
- :func:`make_imagenet_dataset`, :func:`make_tiny_imagenet_dataset` (:mod:`.imagenet`):
  classification in the folder layouts of ImageNet-1K and Tiny-ImageNet (JPEGs of the cls shapes).
- :func:`make_cls_data`, :func:`make_seg_data`, :func:`make_det_data` (:mod:`.task_sets`): one set
  per task for an experiment (the plug-and-play matrix), with the cfg-options pointing the
  configs at it.

All of them draw with :mod:`.drawing` and are deterministic: the same arguments (``seed``
included) give the same files. Writing them needs no OpenMMLab package; the adapters only
register the dataset classes that read them (``ImageFolderCls``, ``TinyImageNetCls``,
``ShapesSegDataset``; mmdet's own ``CocoDataset`` reads the det set).
``kdzoo make-data cls|seg|det ROOT`` writes one of the first three.
"""
from .cls import make_shapes_dataset
from .det import make_det_dataset
from .imagenet import make_imagenet_dataset, make_tiny_imagenet_dataset
from .seg import make_seg_dataset
from .task_sets import make_cls_data, make_det_data, make_seg_data

__all__ = ['make_shapes_dataset', 'make_seg_dataset', 'make_det_dataset', 'make_imagenet_dataset',
           'make_tiny_imagenet_dataset', 'make_cls_data', 'make_seg_data', 'make_det_data']
