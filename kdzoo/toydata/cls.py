"""The generated classification set: shapes x fill patterns in ImageFolder layout (no download).

:func:`make_shapes_dataset` writes::

    root/train/<pattern>_<shape>/00000.png ...      root/val/<pattern>_<shape>/00000.png ...

RGB PNGs (32 px by default), one folder per class (:func:`shape_classes`: every shape solid,
then striped, checkered, dotted), read by the cls adapter's ``ImageFolderCls``. Each image is one
patterned shape in random colours, position, scale and rotation on a noisy gradient background,
sometimes crossed by a distractor line (:func:`draw_shape_image`).

Deterministic: image ``i`` of class ``c`` in split ``s`` comes from
``numpy.random.default_rng([seed, s, c, i])`` alone, so the same arguments give byte-identical
files, and a larger ``per_class`` only adds images.
"""
import itertools
import math
import os

import numpy as np

from .drawing import PATTERNS, SHAPES, distinct_colour, pattern_mask, shape_mask


def draw_shape_image(rng, shape, pattern, size=32, supersample=4):
    """One ``(size, size, 3)`` uint8 image: a patterned shape at a random position, scale and
    rotation on a noisy gradient background, sometimes with a distractor line."""
    from PIL import Image, ImageDraw
    big = size * supersample
    background = rng.integers(0, 256, 3).astype(np.float64)
    gradient = np.linspace(-1, 1, big)[None, :, None] * rng.uniform(-40, 40, 3)
    canvas = np.clip(background + gradient, 0, 255).repeat(big, 0).reshape(big, big, 3)
    foreground = distinct_colour(rng, background)
    second = distinct_colour(rng, foreground)
    fill = np.where(pattern_mask(pattern, big, rng.uniform(0.16, 0.24) * big,
                                 rng.uniform(0, math.pi))[..., None], second, foreground)
    radius = rng.uniform(0.24, 0.42) * big
    cx, cy = rng.uniform(radius * 0.8, big - radius * 0.8, 2)
    mask = shape_mask(shape, big, cx, cy, radius, rng.uniform(0, 2 * math.pi))
    inside = np.asarray(mask)[..., None] > 127
    canvas = np.where(inside, fill, canvas)
    image = Image.fromarray(canvas.astype(np.uint8))
    if rng.random() < 0.5:
        x0, y0, x1, y1 = rng.uniform(0, big, 4)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        ImageDraw.Draw(image).line([(x0, y0), (x1, y1)], fill=colour, width=supersample)
    small = np.asarray(image.resize((size, size), Image.BOX), dtype=np.float64)
    noise = rng.normal(0, rng.uniform(4, 20), small.shape)
    return np.clip(small + noise, 0, 255).round().astype(np.uint8)


def shape_classes(num_classes):
    """Class names ``<pattern>_<shape>``: every shape solid, then striped, checkered, dotted."""
    classes = [f'{p}_{s}' for p, s in itertools.product(PATTERNS, SHAPES)]
    if not 2 <= num_classes <= len(classes):
        raise ValueError(f'make_shapes_dataset: num_classes must be in 2..{len(classes)}, '
                         f'got {num_classes}')
    return classes[:num_classes]


def make_shapes_dataset(root, num_classes=10, per_class=(100, 30), size=32, seed=0,
                        splits=('train', 'val')):
    """Write ``root/<split>/<pattern>_<shape>/<index>.png`` and return ``{split: folder}``.

    Deterministic: the image ``i`` of class ``c`` in split ``s`` is drawn from
    ``numpy.random.default_rng([seed, s, c, i])`` alone, so the same arguments give byte-identical
    files. ``per_class`` is one count for every split or one count per split.
    Classes combine a shape (circle, square, triangle, cross, ring, star) and a fill pattern
    (solid, stripes, checker, dots); colours, pose, background and noise are random.
    """
    from PIL import Image
    counts = (per_class,) * len(splits) if isinstance(per_class, int) else tuple(per_class)
    if len(counts) != len(splits):
        raise ValueError(f'make_shapes_dataset: per_class {per_class} does not match '
                         f'splits {splits}')
    folders = {}
    for split_index, (split, count) in enumerate(zip(splits, counts)):
        folders[split] = os.path.join(root, split)
        for label, name in enumerate(shape_classes(num_classes)):
            pattern, shape = name.split('_')
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng([seed, split_index, label, i])
                pixels = draw_shape_image(rng, shape, pattern, size)
                Image.fromarray(pixels).save(os.path.join(folder, f'{i:05d}.png'))
    return folders
