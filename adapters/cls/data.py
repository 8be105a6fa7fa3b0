"""Classification datasets for MMEngine's Runner.

Every dataset item is ``dict(inputs=uint8 tensor (3, H, W), data_samples=int label)``, so
``collate_fn=dict(type='default_collate')`` gives ``inputs (B, 3, H, W)`` and labels ``(B,)``;
normalisation is left to each classifier. Registered in MMEngine's ``DATASETS`` (plain names):

- ``ImageFolderCls(root, size=None, augment=False, transform=None)``: ``root/<class>/<image>``,
  classes sorted; a class folder without images is an error (it would take a label).
- ``Cifar100Cls(root, split='train', augment=False, transform=None)``: the standard python-pickle
  release, ``root/cifar-100-python/{train,test,meta}`` (``root`` may also be that folder itself),
  read by a restricted unpickler that builds only what the official files hold.

``augment=True``: random crop with zero padding (``padding``, default ``size // 8``) and a
horizontal flip with probability 0.5 (the usual CIFAR recipe).
``transform``: a uint8 ``(3, H, W)`` -> uint8 image transform applied after ``augment``, built by
:func:`kdzoo.adapters.cls.transforms.build_transform` from a dict, a list of dicts or a callable
(e.g. ``dict(type='TimmTrainTransform', size=224)``, MLDR-KD's released recipe).
The generated quick-start set (:func:`kdzoo.toydata.make_shapes_dataset`) is an ImageFolder set.
"""
import os
import pickle

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import DATASETS
from torch.utils.data import Dataset

from .transforms import build_transform

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
    """Common part: ``classes``, ``metainfo``, optional augmentation and transform of each item."""

    def __init__(self, classes, augment=False, padding=None, transform=None):
        self.classes = tuple(classes)
        self.augment = augment
        self.padding = padding
        self.transform = build_transform(transform)

    @property
    def metainfo(self):
        return dict(classes=self.classes)

    def item(self, image, label):
        if self.augment:
            padding = self.padding if self.padding is not None else image.shape[-1] // 8
            image = crop_flip(image, padding)
        if self.transform is not None:
            image = self.transform(image)
        return dict(inputs=image.contiguous(), data_samples=int(label))


def check_no_empty_class(root, classes, labels):
    """Every class folder must hold an image: an empty one still takes a label (labels follow the
    sorted folder names), so the labels after it differ from those of a split without it."""
    used = set(labels)
    empty = [os.path.join(root, name) for label, name in enumerate(classes) if label not in used]
    if empty:
        raise FileNotFoundError(
            f'ImageFolderCls: class folders without images ({", ".join(IMAGE_EXTENSIONS)}): '
            f'{empty}; each still takes a label and shifts the labels of the classes after it. '
            'Add their images or remove the folders.')


@DATASETS.register_module()
class ImageFolderCls(ClsDataset):
    """Images in ``root/<class name>/`` folders (classes sorted by name, labels 0..K-1).

    Args:
        root: the folder holding one sub-folder per class.
        size: resize every image to ``size`` (int or ``(h, w)``) when loading; ``None`` keeps it.
        augment, padding, transform: see the module docstring.
        cache: keep decoded images in memory (small sets with ``num_workers=0``: each image is
            decoded once instead of every epoch).
    """

    def __init__(self, root, size=None, augment=False, padding=None, cache=False,
                 transform=None):
        if not os.path.isdir(root):
            raise FileNotFoundError(f'ImageFolderCls: folder not found: {root}')
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        super().__init__(classes, augment, padding, transform)
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
        check_no_empty_class(root, classes, [label for _, label in self.samples])

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


class CifarUnpickler(pickle.Unpickler):
    """Unpickle only what the official CIFAR-100 python files hold: containers, bytes, numbers and
    numpy arrays. Any other global (a function a crafted file would call) is refused before it
    runs: a pickle can execute code."""

    ALLOWED = {('numpy', 'ndarray'), ('numpy', 'dtype'), ('_codecs', 'encode')} | {
        (f'numpy.{core}.{module}', name) for core in ('core', '_core')
        for module, name in (('multiarray', '_reconstruct'), ('numeric', '_frombuffer'))}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f'{module}.{name} is not allowed: the CIFAR-100 files hold only containers and '
                'numpy arrays')
        return super().find_class(module, name)


def load_cifar_pickle(path):
    """The object in the CIFAR-100 pickle ``path`` (:class:`CifarUnpickler`); an error naming
    the file for anything else."""
    with open(path, 'rb') as f:
        try:
            return CifarUnpickler(f, encoding='bytes').load()
        except pickle.UnpicklingError as err:
            raise ValueError(
                f'Cifar100Cls: {path} is not a file of the CIFAR-100 python release ({err}); it '
                'was refused without running it. Download cifar-100-python.tar.gz again from '
                'https://www.cs.toronto.edu/~kriz/cifar.html') from err


def cifar_folder(root):
    """``root/cifar-100-python`` or ``root`` itself when it holds the ``train`` / ``test`` files."""
    nested = os.path.join(root, 'cifar-100-python')
    return nested if os.path.isdir(nested) else root


@DATASETS.register_module()
class Cifar100Cls(ClsDataset):
    """CIFAR-100 from its python-pickle release (``cifar-100-python.tar.gz`` unpacked in ``root``).

    The files are Python pickles, read by :class:`CifarUnpickler`: a crafted file is refused
    before any of it runs.
    Images are ``(3, 32, 32)`` (before ``transform``); labels are the 100 fine labels.
    """

    def __init__(self, root, split='train', augment=False, padding=None, transform=None):
        if split not in ('train', 'test'):
            raise ValueError(f"Cifar100Cls: split must be 'train' or 'test', got {split!r}")
        folder = cifar_folder(root)
        path = os.path.join(folder, split)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f'Cifar100Cls: {path} not found; expected the unpacked cifar-100-python.tar.gz: '
                f'{root}/cifar-100-python/{{train,test,meta}}')
        batch = load_cifar_pickle(path)
        meta_path = os.path.join(folder, 'meta')
        if os.path.isfile(meta_path):
            names = load_cifar_pickle(meta_path)[b'fine_label_names']
            classes = [name.decode() for name in names]
        else:
            classes = [str(i) for i in range(100)]
        super().__init__(classes, augment, padding, transform)
        data = np.asarray(batch[b'data'], dtype=np.uint8)
        self.images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
        self.labels = list(batch[b'fine_labels'])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.item(self.images[index], self.labels[index])
