"""The generated segmentation set, in mmseg's ``img_dir`` / ``ann_dir`` PNG layout (no download).

:func:`make_seg_dataset` writes::

    root/img_dir/<split>/00000.png ...      (RGB images, 64 px by default)
    root/ann_dir/<split>/00000.png ...      (one uint8 label per pixel: 0 background, 1..K-1 shapes)

:data:`NUM_CLASSES` = 10 classes (:data:`CLASSES`, colours :data:`PALETTE`): background, then the
first nine ``<pattern>_<shape>`` classes of the cls set (the six shapes solid, then three
striped). Each image holds 1-3 shapes in random colours, pose and size on a textured background
(a low-contrast stripe / checker / dot pattern over a colour gradient) with noise; later shapes
cover earlier ones in the image and in the labels alike. The mmseg adapter's
``ShapesSegDataset`` reads it with any mmseg pipeline.

Deterministic: image ``i`` of split ``s`` comes from ``numpy.random.default_rng([seed, s, i])``
alone, so the same arguments give byte-identical files.
"""
import math
import os

import numpy as np

from .cls import shape_classes
from .drawing import PATTERNS, distinct_colour, pattern_mask, shape_mask

NUM_CLASSES = 10
CLASSES = ('background',) + tuple(shape_classes(NUM_CLASSES - 1))
PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
           [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]]


def textured_background(rng, size):
    """``(size, size, 3)`` float: a colour gradient with a low-contrast random pattern."""
    base = rng.integers(40, 216, 3).astype(np.float64)
    gradient = np.linspace(-1, 1, size)[None, :, None] * rng.uniform(-40, 40, 3)
    pattern = PATTERNS[1 + rng.integers(len(PATTERNS) - 1)]
    texture = pattern_mask(pattern, size, rng.uniform(0.05, 0.15) * size, rng.uniform(0, math.pi))
    shade = texture[..., None] * rng.uniform(-35, 35, 3)
    return np.clip(base + gradient + shade, 0, 255)


def draw_seg_image(rng, size=64, supersample=4, max_shapes=3):
    """One ``(image (size, size, 3) uint8, labels (size, size) uint8)`` pair."""
    from PIL import Image
    big = size * supersample
    canvas = textured_background(rng, big)
    labels = Image.new('L', (big, big), 0)
    for _ in range(1 + rng.integers(max_shapes)):
        label = 1 + int(rng.integers(NUM_CLASSES - 1))
        pattern, shape = CLASSES[label].split('_')
        colour = distinct_colour(rng, canvas.mean((0, 1)))
        fill = np.where(pattern_mask(pattern, big, rng.uniform(0.16, 0.24) * big,
                                     rng.uniform(0, math.pi))[..., None],
                        distinct_colour(rng, colour), colour)
        radius = rng.uniform(0.12, 0.3) * big
        cx, cy = rng.uniform(radius, big - radius, 2)
        mask = shape_mask(shape, big, cx, cy, radius, rng.uniform(0, 2 * math.pi))
        labels.paste(label, mask=mask)
        canvas = np.where(np.asarray(mask)[..., None] > 127, fill, canvas)
    image = Image.fromarray(canvas.astype(np.uint8)).resize((size, size), Image.BOX)
    image = np.asarray(image, dtype=np.float64) + rng.normal(0, rng.uniform(3, 12), (size, size, 3))
    centre = supersample // 2
    return (np.clip(image, 0, 255).round().astype(np.uint8),
            np.asarray(labels)[centre::supersample, centre::supersample].copy())


def make_seg_dataset(root, num_images=(40, 10), size=64, seed=0, splits=('train', 'val')):
    """Write the set under ``root`` and return ``root``; deterministic (image ``i`` of split
    ``s`` comes from ``numpy.random.default_rng([seed, s, i])`` alone).

    ``num_images`` is one count for every split or one per split. Read it with
    ``dict(type='ShapesSegDataset', data_root=root,
    data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'), pipeline=...)``.
    """
    from PIL import Image
    counts = (num_images,) * len(splits) if isinstance(num_images, int) else tuple(num_images)
    if len(counts) != len(splits):
        raise ValueError(f'make_seg_dataset: num_images {num_images} does not match '
                         f'splits {splits}')
    for split_index, (split, count) in enumerate(zip(splits, counts)):
        for folder in ('img_dir', 'ann_dir'):
            os.makedirs(os.path.join(root, folder, split), exist_ok=True)
        for i in range(count):
            image, labels = draw_seg_image(np.random.default_rng([seed, split_index, i]), size)
            Image.fromarray(image).save(os.path.join(root, 'img_dir', split, f'{i:05d}.png'))
            Image.fromarray(labels).save(os.path.join(root, 'ann_dir', split, f'{i:05d}.png'))
    return root
