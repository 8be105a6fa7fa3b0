"""Classification datasets for MMEngine's Runner, and the generated quick-start set.

Every dataset item is ``dict(inputs=uint8 tensor (3, H, W), data_samples=int label)``, so
``collate_fn=dict(type='default_collate')`` gives ``inputs (B, 3, H, W)`` and labels ``(B,)``;
normalisation is left to each classifier. Registered in MMEngine's ``DATASETS`` (plain names):

- ``ImageFolderCls(root, size=None, augment=False)``: ``root/<class>/<image>``, classes sorted.
- ``Cifar100Cls(root, split='train', augment=False)``: the standard python-pickle release,
  ``root/cifar-100-python/{train,test,meta}`` (``root`` may also be that folder itself).

``augment=True``: random crop with zero padding (``padding``, default ``size // 8``) and a
horizontal flip with probability 0.5 (the usual CIFAR recipe).
:func:`make_shapes_dataset` draws a deterministic ImageFolder set of shapes and textures.
"""
import itertools
import math
import os
import pickle

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import DATASETS
from torch.utils.data import Dataset

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')


def crop_flip(image, padding):
    """Random crop of the zero-padded ``(3, H, W)`` image back to ``(H, W)``, then a random
    horizontal flip (torch's RNG, so MMEngine's worker seeding applies)."""
    h, w = image.shape[-2:]
    padded = F.pad(image, (padding, padding, padding, padding))
    top, left = torch.randint(0, 2 * padding + 1, (2,)).tolist()
    image = padded[:, top:top + h, left:left + w]
    return image.flip(-1) if torch.rand(()) < 0.5 else image


class ClsDataset(Dataset):
    """Common part: ``classes``, ``metainfo``, optional augmentation of each item."""

    def __init__(self, classes, augment=False, padding=None):
        self.classes = tuple(classes)
        self.augment = augment
        self.padding = padding

    @property
    def metainfo(self):
        return dict(classes=self.classes)

    def item(self, image, label):
        if self.augment:
            padding = self.padding if self.padding is not None else image.shape[-1] // 8
            image = crop_flip(image, padding)
        return dict(inputs=image.contiguous(), data_samples=int(label))


@DATASETS.register_module()
class ImageFolderCls(ClsDataset):
    """Images in ``root/<class name>/`` folders (classes sorted by name, labels 0..K-1).

    Args:
        root: the folder holding one sub-folder per class.
        size: resize every image to ``size`` (int or ``(h, w)``) when loading; ``None`` keeps it.
        augment, padding: see the module docstring.
        cache: keep decoded images in memory (small sets with ``num_workers=0``: each image is
            decoded once instead of every epoch).
    """

    def __init__(self, root, size=None, augment=False, padding=None, cache=False):
        if not os.path.isdir(root):
            raise FileNotFoundError(f'ImageFolderCls: folder not found: {root}')
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        super().__init__(classes, augment, padding)
        self.size = (size, size) if isinstance(size, int) else size
        self.cache = cache
        self.cached = {}
        self.samples = [(os.path.join(root, name, f), label)
                        for label, name in enumerate(classes)
                        for f in sorted(os.listdir(os.path.join(root, name)))
                        if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not self.samples:
            raise FileNotFoundError(f'ImageFolderCls: no images ({", ".join(IMAGE_EXTENSIONS)}) in '
                                    f'class folders under {root}')

    def __len__(self):
        return len(self.samples)

    def load(self, index):
        """The decoded ``(3, H, W)`` uint8 image ``index`` (kept in memory with ``cache=True``)."""
        if index in self.cached:
            return self.cached[index]
        from PIL import Image
        with Image.open(self.samples[index][0]) as image:
            image = image.convert('RGB')
            if self.size is not None and image.size != self.size[::-1]:
                image = image.resize(self.size[::-1], Image.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
        tensor = torch.from_numpy(array.copy()).permute(2, 0, 1)
        if self.cache:
            self.cached[index] = tensor
        return tensor

    def __getitem__(self, index):
        return self.item(self.load(index), self.samples[index][1])


def cifar_folder(root):
    """``root/cifar-100-python`` or ``root`` itself when it holds the ``train`` / ``test`` files."""
    nested = os.path.join(root, 'cifar-100-python')
    return nested if os.path.isdir(nested) else root


@DATASETS.register_module()
class Cifar100Cls(ClsDataset):
    """CIFAR-100 from its python-pickle release (``cifar-100-python.tar.gz`` unpacked in ``root``).

    The files are Python pickles: load only the official release (or files you made).
    Images are ``(3, 32, 32)``; labels are the 100 fine labels.
    """

    def __init__(self, root, split='train', augment=False, padding=None):
        if split not in ('train', 'test'):
            raise ValueError(f"Cifar100Cls: split must be 'train' or 'test', got {split!r}")
        folder = cifar_folder(root)
        path = os.path.join(folder, split)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'Cifar100Cls: {path} not found; expected the unpacked cifar-100-python.tar.gz: '
                f'{root}/cifar-100-python/{{train,test,meta}}')
        with open(path, 'rb') as f:
            batch = pickle.load(f, encoding='bytes')
        meta_path = os.path.join(folder, 'meta')
        if os.path.isfile(meta_path):
            with open(meta_path, 'rb') as f:
                names = pickle.load(f, encoding='bytes')[b'fine_label_names']
            classes = [name.decode() for name in names]
        else:
            classes = [str(i) for i in range(100)]
        super().__init__(classes, augment, padding)
        data = np.asarray(batch[b'data'], dtype=np.uint8)
        self.images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
        self.labels = list(batch[b'fine_labels'])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.item(self.images[index], self.labels[index])


# ---------------------------------------------------------------------------------------------
# The generated quick-start set: shapes x fill patterns, random colours, pose and noise.

SHAPES = ('circle', 'square', 'triangle', 'cross', 'ring', 'star')
PATTERNS = ('solid', 'stripes', 'checker', 'dots')


def shape_polygons(shape, cx, cy, radius, angle):
    """The shape as ``(outer polygon, hole polygon or None)`` in pixel coordinates."""
    def ngon(points, r=radius, rotate=angle):
        return [(cx + rr * r * math.cos(a + rotate), cy + rr * r * math.sin(a + rotate))
                for a, rr in points]
    circle = [(2 * math.pi * k / 48, 1.0) for k in range(48)]
    if shape == 'circle':
        return ngon(circle), None
    if shape == 'ring':
        return ngon(circle), ngon(circle, radius * 0.55)
    if shape == 'square':
        return ngon([(math.pi / 4 + k * math.pi / 2, 1.0) for k in range(4)]), None
    if shape == 'triangle':
        return ngon([(-math.pi / 2 + k * 2 * math.pi / 3, 1.0) for k in range(3)]), None
    if shape == 'star':
        return ngon([(-math.pi / 2 + k * math.pi / 5, 1.0 if k % 2 == 0 else 0.45)
                     for k in range(10)]), None
    if shape == 'cross':  # a plus sign with arms of half-width 0.3
        corners = [(0.3, 1), (0.3, 0.3), (1, 0.3), (1, -0.3), (0.3, -0.3), (0.3, -1),
                   (-0.3, -1), (-0.3, -0.3), (-1, -0.3), (-1, 0.3), (-0.3, 0.3), (-0.3, 1)]
        return ngon([(math.atan2(y, x), math.hypot(x, y)) for x, y in corners]), None
    raise ValueError(f'unknown shape {shape!r}; choose from {SHAPES}')


def pattern_mask(pattern, size, period, angle):
    """Boolean ``(size, size)`` map: True where the pattern shows its second colour."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    a = (u * math.cos(angle) + v * math.sin(angle)) / period
    b = (-u * math.sin(angle) + v * math.cos(angle)) / period
    if pattern == 'solid':
        return np.zeros((size, size), bool)
    if pattern == 'stripes':
        return (a % 1) < 0.5
    if pattern == 'checker':
        return (np.floor(a) + np.floor(b)) % 2 == 1
    if pattern == 'dots':
        return np.hypot(a - np.round(a), b - np.round(b)) < 0.3
    raise ValueError(f'unknown pattern {pattern!r}; choose from {PATTERNS}')


def distinct_colour(rng, other, min_distance=120):
    """A random RGB colour at least ``min_distance`` away from ``other``."""
    while True:
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(colour - other) >= min_distance:
            return colour


def shape_mask(shape, size, cx, cy, radius, angle):
    """A ``size`` x ``size`` PIL 'L' mask of ``shape``: 255 inside, 0 outside (and in a ring's hole)."""
    from PIL import Image, ImageDraw
    outer, hole = shape_polygons(shape, cx, cy, radius, angle)
    mask = Image.new('L', (size, size), 0)
    draw = ImageDraw.Draw(mask)
    draw.polygon(outer, fill=255)
    if hole is not None:
        draw.polygon(hole, fill=0)
    return mask


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
