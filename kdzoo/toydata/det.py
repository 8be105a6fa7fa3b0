"""The generated detection set, in COCO format (no download).

:func:`make_det_dataset` writes::

    root/images/train/000000.png ...        root/annotations/instances_train.json
    root/images/val/000000.png ...          root/annotations/instances_val.json

Ten classes (five shapes x two colours, :data:`CLASSES`; category ids 1..10 in that order).
Each image is per-pixel noise with one to ``max_objects`` flat-coloured shapes, each drawn with
the shared :func:`kdzoo.toydata.drawing.shape_mask` at a random position, size and rotation
(``disk`` is the drawing's ``circle``). Every annotation's ``bbox`` is the tight box of the pixels
its shape drew, whatever the pose; objects may overlap (a later one covers an earlier one).
Every ``empty_every``-th image has no object (an empty ``annotations`` list for it, as COCO has).
Read it with mmdet's ``CocoDataset`` and ``metainfo=dict(classes=CLASSES)``
(configs/det/_base_/quickstart.py).

Deterministic: everything follows from one ``numpy.random.default_rng(seed)``, drawn through
train then val, so the same arguments give the same files.
"""
import json
import math
import os

import numpy as np

from .drawing import shape_mask

SHAPES = ('square', 'disk', 'triangle', 'cross', 'ring')
DRAWN = {'disk': 'circle'}  # det shape name -> drawing.SHAPES name, where they differ
COLOURS = {'red': (220, 40, 40), 'blue': (40, 60, 220)}
CLASSES = tuple(f'{colour}_{shape}' for colour in COLOURS for shape in SHAPES)
MIN_SIZE = 16


def tight_box(mask):
    """``[x, y, w, h]`` (ints) of the smallest box holding every True pixel of ``mask``."""
    ys, xs = np.nonzero(mask)
    x, y = int(xs.min()), int(ys.min())
    return [x, y, int(xs.max()) - x + 1, int(ys.max()) - y + 1]


def draw_image(rng, size, num_objects, min_box, max_box):
    """One ``(size, size, 3)`` uint8 image and its objects ``[(class index, [x, y, w, h])]``:
    shapes ``min_box`` to ``max_box`` pixels across (circumscribed circle), wholly inside."""
    image = rng.integers(90, 170, (size, size, 3)).astype(np.uint8)
    objects = []
    for _ in range(num_objects):
        label = int(rng.integers(len(CLASSES)))
        colour, shape = CLASSES[label].split('_')
        radius = rng.uniform(min_box, max_box) / 2
        cx, cy = rng.uniform(radius * 1.1, size - radius * 1.1, 2)  # a cross reaches 1.04 r
        mask = np.asarray(shape_mask(DRAWN.get(shape, shape), size, cx, cy, radius,
                                     rng.uniform(0, 2 * math.pi))) > 127
        image[mask] = COLOURS[colour]
        objects.append((label, tight_box(mask)))
    return image, objects


def coco_json(images, annotations):
    return dict(
        images=images, annotations=annotations,
        categories=[dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)])


def write_split(root, split, count, rng, size, max_objects, empty_every):
    from PIL import Image
    folder = os.path.join(root, 'images', split)
    os.makedirs(folder, exist_ok=True)
    images, annotations = [], []
    for index in range(count):
        num_objects = 0 if index % empty_every == empty_every - 1 else \
            int(rng.integers(1, max_objects + 1))
        image, objects = draw_image(rng, size, num_objects, size // 8, size // 3)
        name = f'{index:06d}.png'
        Image.fromarray(image).save(os.path.join(folder, name))
        images.append(dict(id=index + 1, file_name=name, width=size, height=size))
        for label, box in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=index + 1,
                                    category_id=label + 1, bbox=box, area=box[2] * box[3],
                                    iscrowd=0))
    path = os.path.join(root, 'annotations', f'instances_{split}.json')
    with open(path, 'w') as f:
        json.dump(coco_json(images, annotations), f)
    return path


def make_det_dataset(root, num_images=(64, 16), size=128, max_objects=3, empty_every=4, seed=0):
    """Write the generated COCO-format set under ``root``.

    Args:
        num_images: ``(train, val)`` image counts.
        size: image side in pixels (square images, at least 16).
        max_objects: objects per non-empty image, drawn uniformly from ``1..max_objects``
            (shapes of ``size // 8`` to ``size // 3`` pixels across at any rotation, possibly
            overlapping; boxes are tight around each drawn shape).
        empty_every: every ``empty_every``-th image has no object.
    Returns ``dict(root, classes, train_ann, val_ann, train_img, val_img)``: the annotation files
    and the image folders (absolute paths), for a ``CocoDataset`` with ``data_root=root``.
    """
    if empty_every < 1:
        raise ValueError(f'make_det_dataset: empty_every must be >= 1, got {empty_every}')
    if size < MIN_SIZE:
        raise ValueError(f'make_det_dataset: size must be >= {MIN_SIZE}, got {size}')
    root = os.path.abspath(root)
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {split: write_split(root, split, count, rng, size, max_objects, empty_every)
             for split, count in zip(('train', 'val'), num_images)}
    return dict(root=root, classes=CLASSES,
                train_ann=paths['train'], val_ann=paths['val'],
                train_img=os.path.join(root, 'images', 'train'),
                val_img=os.path.join(root, 'images', 'val'))
