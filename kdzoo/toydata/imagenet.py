"""Generated sets in the folder layouts of ImageNet-1K and Tiny-ImageNet (no download).

The ImageNet / Tiny-ImageNet configs of ``configs/cls`` are tested on these: the same folders and
file names as the real releases, the shapes of :mod:`.cls` as images (:func:`draw_shape_image`,
one ``<pattern>_<shape>`` class per WordNet-like id ``n0000000<c>``), JPEG files.

:func:`make_imagenet_dataset` writes the ImageFolder layout of OFA-KD's README (github.com/Hao840/
OFAKD, "Data preparation"), read by ``ImageFolderCls``::

    root/train/<wnid>/<wnid>_<i>.JPEG
    root/val/<wnid>/ILSVRC2012_val_<n>.JPEG          (validation images sorted into class folders)

:func:`make_tiny_imagenet_dataset` writes the layout of ``tiny-imagenet-200.zip`` (CS231n), read by
``TinyImageNetCls`` (``kdzoo.adapters.cls.tiny_imagenet``)::

    root/wnids.txt                                   one class id per line
    root/words.txt                                   <wnid> TAB <class name>
    root/train/<wnid>/images/<wnid>_<i>.JPEG
    root/train/<wnid>/<wnid>_boxes.txt               <file> TAB x0 TAB y0 TAB x1 TAB y1
    root/val/images/val_<n>.JPEG                     all classes in one folder
    root/val/val_annotations.txt                     <file> TAB <wnid> TAB x0 TAB y0 TAB x1 TAB y1

The boxes are the whole image (the readers ignore them). Deterministic: image ``i`` of class ``c``
in split ``s`` comes from ``numpy.random.default_rng([seed, s, c, i])`` alone, so the same
arguments give byte-identical files.
"""
import os

import numpy as np

from .cls import draw_shape_image, shape_classes

SPLITS = ('train', 'val')


def wnid(label):
    """The WordNet-like id of class ``label``: ``n00000000``, ``n00000001``, ..."""
    return f'n{label:08d}'


def counts_per_split(per_class, name):
    counts = (per_class,) * len(SPLITS) if isinstance(per_class, int) else tuple(per_class)
    if len(counts) != len(SPLITS) or min(counts) < 1:
        raise ValueError(f'{name}: per_class must be one positive count or one per split '
                         f'{SPLITS}, got {per_class}')
    return counts


def images(num_classes, per_class, size, seed, name):
    """``(split, label, index, pixels)`` of every image, split by split, class by class."""
    counts = counts_per_split(per_class, name)
    for split_index, (split, count) in enumerate(zip(SPLITS, counts)):
        for label, class_name in enumerate(shape_classes(num_classes)):
            pattern, shape = class_name.split('_')
            for i in range(count):
                rng = np.random.default_rng([seed, split_index, label, i])
                yield split, label, i, draw_shape_image(rng, shape, pattern, size)


def save_jpeg(pixels, path):
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path, format='JPEG', quality=90)


def make_imagenet_dataset(root, num_classes=4, per_class=(4, 2), size=64, seed=0):
    """Write ``root/{train,val}/<wnid>/*.JPEG`` (ImageNet's ImageFolder layout) and return
    ``{'train': folder, 'val': folder}``; ``per_class`` is one count or one per split."""
    val_number = 0
    for split, label, i, pixels in images(num_classes, per_class, size, seed,
                                          'make_imagenet_dataset'):
        if split == 'train':
            name = f'{wnid(label)}_{i}.JPEG'
        else:
            val_number += 1
            name = f'ILSVRC2012_val_{val_number:08d}.JPEG'
        save_jpeg(pixels, os.path.join(root, split, wnid(label), name))
    return {split: os.path.join(root, split) for split in SPLITS}


def make_tiny_imagenet_dataset(root, num_classes=4, per_class=(4, 2), size=64, seed=0):
    """Write the Tiny-ImageNet layout (module docstring) under ``root`` and return ``root``;
    ``per_class`` is one count or one per split (train, val)."""
    classes = shape_classes(num_classes)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, 'wnids.txt'), 'w') as f:
        f.writelines(f'{wnid(label)}\n' for label in range(num_classes))
    with open(os.path.join(root, 'words.txt'), 'w') as f:
        f.writelines(f'{wnid(label)}\t{name}\n' for label, name in enumerate(classes))
    box = f'0\t0\t{size - 1}\t{size - 1}'
    boxes, annotations = {}, []
    for split, label, i, pixels in images(num_classes, per_class, size, seed,
                                          'make_tiny_imagenet_dataset'):
        if split == 'train':
            name = f'{wnid(label)}_{i}.JPEG'
            save_jpeg(pixels, os.path.join(root, 'train', wnid(label), 'images', name))
            boxes.setdefault(label, []).append(f'{name}\t{box}\n')
        else:
            name = f'val_{len(annotations)}.JPEG'
            save_jpeg(pixels, os.path.join(root, 'val', 'images', name))
            annotations.append(f'{name}\t{wnid(label)}\t{box}\n')
    for label, lines in boxes.items():
        with open(os.path.join(root, 'train', wnid(label), f'{wnid(label)}_boxes.txt'), 'w') as f:
            f.writelines(lines)
    with open(os.path.join(root, 'val', 'val_annotations.txt'), 'w') as f:
        f.writelines(annotations)
    return root
