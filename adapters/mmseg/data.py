"""The dataset class of the generated segmentation set (:mod:`kdzoo.toydata.seg`, mmseg's
``img_dir`` / ``ann_dir`` PNG layout), registered in mmseg's ``DATASETS``."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from kdzoo.toydata.seg import CLASSES, PALETTE


@DATASETS.register_module()
class ShapesSegDataset(BaseSegDataset):
    """The set of :func:`kdzoo.toydata.make_seg_dataset`: ``.png`` images and label maps,
    10 classes with background ``0`` (a real class, ``reduce_zero_label=False`` by default)."""

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
