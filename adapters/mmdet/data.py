"""A generated detection set in COCO format, for tests and the detection quick-start (no download).

:func:`make_det_dataset` draws coloured shapes on a noisy background::

    root/images/train/000000.png ...        root/annotations/instances_train.json
    root/images/val/000000.png ...          root/annotations/instances_val.json

Ten classes (five shapes x two colours, :data:`CLASSES`), one to ``max_objects`` objects per
image with tight boxes, and every ``empty_every``-th image without any object (an empty
``annotations`` list for it, as COCO has). Everything follows from ``seed``: the same arguments
give the same files. Read it with mmdet's ``CocoDataset`` and ``metainfo=dict(classes=CLASSES)``
(configs/det/_base_/quickstart_data.py).
"""
import json
import os

import numpy as np

SHAPES = ('square', 'disk', 'triangle', 'cross', 'ring')
COLOURS = {'red': (220, 40, 40), 'blue': (40, 60, 220)}
CLASSES = tuple(f'{colour}_{shape}' for colour in COLOURS for shape in SHAPES)


def shape_mask(shape, size):
    """A boolean ``(size, size)`` mask of ``shape`` filling its box (touching all four sides)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    c = size / 2
    r = np.hypot(yy - c, xx - c)
    third = size / 3
    masks = {
        'square': np.ones((size, size), bool),
        'disk': r <= c,
        'triangle': np.abs(xx - c) <= yy / 2,
        'cross': (np.abs(xx - c) <= third / 2) | (np.abs(yy - c) <= third / 2),
        'ring': (r <= c) & (r >= c * 0.55),
    }
    mask = masks[shape]
    mask[0, int(c)] = mask[-1, int(c)] = mask[int(c), 0] = mask[int(c), -1] = True
    return mask


def draw_image(rng, size, num_objects, min_box, max_box):
    """One ``(size, size, 3)`` uint8 image and its objects ``[(class index, [x, y, w, h])]``."""
    image = rng.integers(90, 170, (size, size, 3)).astype(np.uint8)
    objects = []
    for _ in range(num_objects):
        label = int(rng.integers(len(CLASSES)))
        side = int(rng.integers(min_box, max_box + 1))
        x, y = (int(v) for v in rng.integers(0, size - side + 1, 2))
        colour, shape = CLASSES[label].split('_')
        image[y:y + side, x:x + side][shape_mask(shape, side)] = COLOURS[colour]
        objects.append((label, [x, y, side, side]))
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
        size: image side in pixels (square images).
        max_objects: objects per non-empty image, drawn uniformly from ``1..max_objects``
            (boxes of ``size // 8`` to ``size // 3`` pixels, possibly overlapping).
        empty_every: every ``empty_every``-th image has no object.
    Returns ``dict(root, classes, train_ann, val_ann, train_img, val_img)``: the annotation files
    and the image folders (absolute paths), for a ``CocoDataset`` with ``data_root=root``.
    """
    if empty_every < 1:
        raise ValueError(f'make_det_dataset: empty_every must be >= 1, got {empty_every}')
    root = os.path.abspath(root)
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {split: write_split(root, split, count, rng, size, max_objects, empty_every)
             for split, count in zip(('train', 'val'), num_images)}
    return dict(root=root, classes=CLASSES,
                train_ann=paths['train'], val_ann=paths['val'],
                train_img=os.path.join(root, 'images', 'train'),
                val_img=os.path.join(root, 'images', 'val'))
