"""Tiny-ImageNet (200 classes, 64 x 64 images) in the folder layout of its release.

``tiny-imagenet-200.zip`` (CS231n, http://cs231n.stanford.edu/tiny-imagenet-200.zip) unpacks to::

    tiny-imagenet-200/wnids.txt                                 the 200 class ids, one per line
    tiny-imagenet-200/train/<wnid>/images/<wnid>_<i>.JPEG       500 images per class
    tiny-imagenet-200/val/images/val_<n>.JPEG                   10,000 images, all classes together
    tiny-imagenet-200/val/val_annotations.txt                   <file> TAB <wnid> TAB <box>
    tiny-imagenet-200/test/images/test_<n>.JPEG                 unlabelled (not read here)

``TinyImageNetCls(root, split='train'|'val')`` (registered in MMEngine's ``DATASETS``) reads it:
classes are the ids of ``wnids.txt`` sorted (labels 0..199 in the order an ImageFolder of the
training folders gives), the validation labels come from ``val_annotations.txt`` (boxes ignored).
Items are ``dict(inputs=uint8 (3, 64, 64), data_samples=label)`` like every kdzoo classification
set (:mod:`kdzoo.adapters.cls.data`), grey images converted to RGB; ``augment`` / ``padding`` /
``transform`` as there. A missing file or an inconsistent annotation is an error naming the file
and the expected layout. ``kdzoo.toydata.make_tiny_imagenet_dataset`` writes a small set of this
layout.
"""
import os

import numpy as np
import torch
from mmengine.registry import DATASETS

from .data import ClsDataset, read_rgb

LAYOUT = ('expected the unpacked tiny-imagenet-200.zip: wnids.txt, train/<wnid>/images/*.JPEG, '
          'val/images/*.JPEG and val/val_annotations.txt')


def read_lines(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f'TinyImageNetCls: {what} {path} not found; {LAYOUT}')
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def train_samples(root, classes):
    samples = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, 'train', name, 'images')
        if not os.path.isdir(folder):
            raise FileNotFoundError(f'TinyImageNetCls: no training folder {folder} for class '
                                    f'{name} of wnids.txt; {LAYOUT}')
        samples += [(os.path.join(folder, f), label) for f in sorted(os.listdir(folder))
                    if f.lower().endswith('.jpeg')]
    return samples


def val_samples(root, classes):
    path = os.path.join(root, 'val', 'val_annotations.txt')
    label_of = {name: label for label, name in enumerate(classes)}
    folder = os.path.join(root, 'val', 'images')
    samples = []
    for number, line in enumerate(read_lines(path, 'the validation labels'), 1):
        fields = line.split('\t')
        if len(fields) < 2 or fields[1] not in label_of:
            raise ValueError(f'TinyImageNetCls: {path} line {number} ({line!r}) does not give an '
                             'image file and a class id of wnids.txt separated by a tab')
        image = os.path.join(folder, fields[0])
        if not os.path.isfile(image):
            raise FileNotFoundError(f'TinyImageNetCls: {path} line {number} names {image}, which '
                                    f'does not exist; {LAYOUT}')
        samples.append((image, label_of[fields[1]]))
    return samples


@DATASETS.register_module()
class TinyImageNetCls(ClsDataset):
    """Tiny-ImageNet's ``train`` or ``val`` split (module docstring).

    Args:
        root: the unpacked ``tiny-imagenet-200`` folder.
        split: ``'train'`` or ``'val'`` (the test images have no labels).
        augment, padding, transform: as :class:`kdzoo.adapters.cls.data.ClsDataset`.
    """

    def __init__(self, root, split='train', augment=False, padding=None, transform=None):
        if split not in ('train', 'val'):
            raise ValueError(f"TinyImageNetCls: split must be 'train' or 'val' (the test images "
                             f'have no labels), got {split!r}')
        classes = sorted(read_lines(os.path.join(root, 'wnids.txt'), 'the class list'))
        super().__init__(classes, augment, padding, transform)
        self.samples = (train_samples if split == 'train' else val_samples)(root, classes)
        if not self.samples:
            raise FileNotFoundError(f'TinyImageNetCls: no {split} images under {root}; {LAYOUT}')

    def __len__(self):
        return len(self.samples)

    def load(self, index):
        """The decoded ``(3, H, W)`` uint8 image ``index`` (grey images as RGB; an unreadable
        file is an ``OSError`` naming it, :func:`~kdzoo.adapters.cls.data.read_rgb`)."""
        array = np.asarray(read_rgb(self.samples[index][0]), dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1)

    def __getitem__(self, index):
        return self.item(self.load(index), self.samples[index][1])
