"""The generated COCO-format detection set (kdzoo.toydata.det): deterministic, tight boxes around
the drawn shapes, every class, empty images, and read by mmdet's CocoDataset with the quick-start
pipeline."""
import filecmp
import json
import os

import numpy as np
import pytest
from PIL import Image

from kdzoo.toydata.det import CLASSES, COLOURS, make_det_dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_same_arguments_same_files(tmp_path):
    a = make_det_dataset(tmp_path / 'a', num_images=(6, 2), size=64, seed=3)
    b = make_det_dataset(tmp_path / 'b', num_images=(6, 2), size=64, seed=3)
    assert open(a['train_ann']).read() == open(b['train_ann']).read()
    assert filecmp.cmp(f'{a["train_img"]}/000005.png', f'{b["train_img"]}/000005.png',
                       shallow=False)
    c = make_det_dataset(tmp_path / 'c', num_images=(6, 2), size=64, seed=4)
    assert open(a['train_ann']).read() != open(c['train_ann']).read()


def test_annotations_are_valid_coco_with_empty_images(tmp_path):
    data = make_det_dataset(tmp_path, num_images=(8, 4), size=96, empty_every=4)
    coco = json.load(open(data['train_ann']))
    assert [c['name'] for c in coco['categories']] == list(CLASSES) and len(CLASSES) == 10
    with_objects = {a['image_id'] for a in coco['annotations']}
    assert sorted({i['id'] for i in coco['images']} - with_objects) == [4, 8]
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and x + w <= 96 and y + h <= 96 and min(w, h) >= 6
        assert 1 <= ann['category_id'] <= 10 and ann['area'] == w * h
    image = np.asarray(Image.open(f'{data["train_img"]}/000000.png'))
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8


def test_every_box_is_the_tight_box_of_its_drawn_shape(tmp_path):
    """One object per image: its pixels are exactly those of its class colour (the background
    noise lies in 90..169), and the annotated box is their tight box, at any rotation."""
    data = make_det_dataset(tmp_path, num_images=(40, 2), size=64, max_objects=1, empty_every=40)
    coco = json.load(open(data['train_ann']))
    assert len(coco['annotations']) == 39
    for ann in coco['annotations']:
        image = np.asarray(Image.open(f'{data["train_img"]}/{ann["image_id"] - 1:06d}.png'))
        colour = COLOURS[CLASSES[ann['category_id'] - 1].split('_')[0]]
        ys, xs = np.nonzero((image == colour).all(-1))
        x, y, w, h = ann['bbox']
        assert [x, y, w, h] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]
        assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64


def test_objects_of_every_class_appear(tmp_path):
    data = make_det_dataset(tmp_path, num_images=(40, 2), size=64)
    coco = json.load(open(data['train_ann']))
    assert {a['category_id'] for a in coco['annotations']} == set(range(1, len(CLASSES) + 1))


def test_disk_is_the_drawings_circle_and_class_names_are_unchanged():
    from kdzoo.toydata.det import DRAWN, SHAPES
    from kdzoo.toydata.drawing import SHAPES as DRAWING_SHAPES
    assert CLASSES[:5] == ('red_square', 'red_disk', 'red_triangle', 'red_cross', 'red_ring')
    assert all(DRAWN.get(shape, shape) in DRAWING_SHAPES for shape in SHAPES)


def test_size_too_small_is_refused(tmp_path):
    with pytest.raises(ValueError, match='size must be >= 16'):
        make_det_dataset(tmp_path, size=8)


def test_coco_dataset_reads_it_with_empty_images(tmp_path):
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import kdzoo.adapters.mmdet  # noqa: F401  (registers mmdet's modules)
    data = make_det_dataset(tmp_path, num_images=(4, 2), size=64)
    cfg = Config.fromfile(
        os.path.join(REPO, 'configs/det/_base_/quickstart.py')).train_dataloader.dataset
    cfg.data_root = data['root'] + '/'
    init_default_scope('mmdet')
    dataset = DATASETS.build(cfg)
    assert len(dataset) == 4 and dataset.metainfo['classes'] == CLASSES
    items = [dataset[i]['data_samples'] for i in range(4)]
    counts = [len(s.gt_instances) for s in items]
    assert counts[3] == 0 and all(c > 0 for c in counts[:3])
