"""Classification datasets for MMEngine's Runner.

Every dataset item is ``dict(inputs=uint8 tensor (3, H, W), data_samples=int label)``, so
``collate_fn=dict(type='default_collate')`` gives ``inputs (B, 3, H, W)`` and labels ``(B,)``;
normalisation is left to each classifier. Registered in MMEngine's ``DATASETS`` (plain names):

- ``ImageFolderCls(root, size=None, augment=False, transform=None)``: ``root/<class>/<image>``,
  classes sorted; a class folder without images is an error (it would take a label). Hidden
  entries (a name starting with ``.``: ``.ipynb_checkpoints``, ``.DS_Store``, macOS ``._*``
  files) are skipped, folders and images alike: a hidden folder would take label 0 and shift every
  class after it. An image name that is not a regular file (a FIFO, a socket, a device, a folder,
  a broken link) is skipped with a warning, never opened (reading a FIFO waits forever). An image
  that cannot be decoded (truncated, not an image) is an error naming the file. Without ``size``
  and ``transform`` every image must have the size of the set's first image (they are batched
  together): another size is an error naming the file, both sizes and the fix (``size=...``).
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
import warnings

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


def visible(names):
    """``names`` without hidden entries (starting with ``.``: ``.ipynb_checkpoints``, ``._x.png``),
    sorted."""
    return sorted(name for name in names if not name.startswith('.'))


def class_images(folder):
    """The image files of one class folder, sorted: visible names with an image extension that are
    regular files (or links to one). Other entries named like an image (a FIFO, a socket, a
    folder, a broken link) are skipped with a warning: opening a FIFO would wait forever for a
    writer. ``os.scandir`` tells regular files from the rest without a ``stat`` call per file on
    most file systems (ImageNet's 1.3 M images)."""
    with os.scandir(folder) as entries:
        found = sorted((entry.name, entry.is_file()) for entry in entries
                       if not entry.name.startswith('.')
                       and entry.name.lower().endswith(IMAGE_EXTENSIONS))
    skipped = [os.path.join(folder, name) for name, regular in found if not regular]
    if skipped:
        warnings.warn(f'ImageFolderCls: skipped {len(skipped)} entries with an image name that '
                      'are not regular files (FIFO, socket, device, folder or broken link): '
                      f'{skipped[:5]}')
    return [os.path.join(folder, name) for name, regular in found if regular]


UNREADABLE = (OSError, SyntaxError, ValueError)  # what PIL raises for a broken image file


def unreadable(path, err):
    """The error for an image file PIL cannot read, naming the file."""
    return OSError(f'ImageFolderCls: cannot read the image {path} ({type(err).__name__}: {err}); '
                   'it is truncated, not an image or not readable. Replace or remove the file.')


def read_rgb(path):
    """The image file ``path`` decoded as RGB (a PIL image, fully read); an image PIL cannot
    decode is an ``OSError`` naming the file. 16-bit greyscale (PIL modes ``I;16*`` / ``I``) is
    scaled to 8 bits (PIL's own conversion clips every value above 255 to white)."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            if image.mode.startswith('I'):
                values = np.asarray(image, dtype=np.float64) / 257.0  # 65535 -> 255
                image = Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8), 'L')
            return image.convert('RGB')
    except UNREADABLE as err:
        raise unreadable(path, err) from err


def image_size(path):
    """``(height, width)`` of the image file ``path``, from its header (no decoding)."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            return image.size[::-1]
    except UNREADABLE as err:
        raise unreadable(path, err) from err


@DATASETS.register_module()
class ImageFolderCls(ClsDataset):
    """Images in ``root/<class name>/`` folders (classes sorted by name, labels 0..K-1; hidden
    entries and non-regular files skipped, see the module docstring).

    Args:
        root: the folder holding one sub-folder per class.
        size: resize every image to ``size`` (int or ``(h, w)``) when loading; ``None`` keeps it
            (then, without ``transform``, every image must have the first image's size).
        augment, padding, transform: see the module docstring.
        cache: keep decoded images in memory (small sets with ``num_workers=0``: each image is
            decoded once instead of every epoch).
    """

    def __init__(self, root, size=None, augment=False, padding=None, cache=False,
                 transform=None):
        if not os.path.isdir(root):
            raise FileNotFoundError(f'ImageFolderCls: folder not found: {root}')
        classes = [d for d in visible(os.listdir(root)) if os.path.isdir(os.path.join(root, d))]
        super().__init__(classes, augment, padding, transform)
        self.size = (size, size) if isinstance(size, int) else size
        self.cache = cache
        self.cached = {}
        self.samples = [(path, label) for label, name in enumerate(classes)
                        for path in class_images(os.path.join(root, name))]
        if not self.samples:
            raise FileNotFoundError(f'ImageFolderCls: no images ({", ".join(IMAGE_EXTENSIONS)}) in '
                                    f'class folders under {root}')
        check_no_empty_class(root, classes, [label for _, label in self.samples])
        # Batched as they are: without a resize, every image must have the first one's size.
        self.same_size = (image_size(self.samples[0][0])
                          if self.size is None and self.transform is None else None)

    def __len__(self):
        return len(self.samples)

    def check_size(self, path, image):
        """Without ``size`` and ``transform``, ``image`` must have the set's first image's size
        (the batch would not stack): an error naming the file, both sizes and the fix."""
        found = image.size[::-1]
        if self.same_size is None or found == self.same_size:
            return
        raise ValueError(
            f'ImageFolderCls: the image {path} is {found[0]}x{found[1]} (height x width), but '
            f'{self.samples[0][0]}, the first image of the set, is {self.same_size[0]}x'
            f'{self.same_size[1]}; images are batched together, so they need one size. Set '
            f'size={self.same_size} (or the size the model expects) in the dataset, e.g. '
            f'dataset=dict(type=\'ImageFolderCls\', ..., size={self.same_size}), to resize '
            'every image when loading.')

    def load(self, index):
        """The decoded ``(3, H, W)`` uint8 image ``index`` (kept in memory with ``cache=True``)."""
        if index in self.cached:
            return self.cached[index]
        from PIL import Image
        path = self.samples[index][0]
        image = read_rgb(path)
        self.check_size(path, image)
        if self.size is not None and image.size != self.size[::-1]:
            image = image.resize(self.size[::-1], Image.BILINEAR)
        tensor = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
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
