"""Image transforms of the classification datasets: uint8 ``(3, H, W)`` tensor in, uint8 out.

The datasets hand uint8 images to the models, which resize and normalise themselves
(:meth:`TimmClassifier.preprocess`), so these transforms only crop, resize and flip, with
torchvision's tensor ops and torch's RNG (MMEngine seeds it per worker). Two presets reproduce what
``timm.data.create_transform`` builds (timm 0.6.5, the version of the OFA-KD and MLDR-KD releases)
before its ``ToTensor`` / ``Normalize``:

- :class:`TimmTrainTransform` (``create_transform(is_training=True, ...)`` as MLDR-KD's ``train.py``
  calls it, Ethan-Yang02/MLDR-KD ``train.py``, ``make_transforms``): timm's
  ``RandomResizedCropAndInterpolation`` -- a crop of area ``scale`` (default 0.08-1) of the image
  and aspect ratio ``ratio`` (default 3/4-4/3, log-uniform; 10 tries, then the centre crop of the
  closest ratio) resized to ``size`` with ``interpolation`` (``'random'``: bilinear or bicubic,
  drawn per image) -- then a horizontal flip with probability ``hflip`` (0.5). Colour jitter 0,
  no auto-augment, no random erasing, no mixup: the released YAMLs
  (``configs/cifar100/*.yaml``) switch them all off.
- :class:`TimmEvalTransform` (``create_transform(is_training=False, crop_pct=0.875)``): resize the
  shorter side to ``floor(size / crop_pct)`` (256 for 224) with ``interpolation`` (bilinear in the
  release), then the centre ``size x size`` crop.

Interpolation is torchvision's on tensors with antialiasing (PIL's filters up to uint8 rounding;
the release resizes PIL images). Build one from a config with :func:`build_transform`:
``dict(type='TimmTrainTransform', size=224)``, a list of such dicts (applied in order), a
callable, or ``None`` (no transform).
"""
import math

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import RandomResizedCrop as TorchvisionRandomResizedCrop
from torchvision.transforms.v2 import functional as TF

INTERPOLATIONS = {'bilinear': InterpolationMode.BILINEAR, 'bicubic': InterpolationMode.BICUBIC,
                  'nearest': InterpolationMode.NEAREST}
RANDOM_INTERPOLATIONS = ('bilinear', 'bicubic')  # timm 0.6.5 _RANDOM_INTERPOLATION


def pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def check_interpolation(name, allow_random=False):
    valid = tuple(INTERPOLATIONS) + (('random',) if allow_random else ())
    if name not in valid:
        raise ValueError(f'unknown interpolation {name!r}; choose one of {valid}')
    return name


def check_image(image, name):
    if not torch.is_tensor(image) or image.dim() != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if torch.is_tensor(image) else type(image).__name__
        raise ValueError(f'{name}: expected a (3, H, W) image tensor, got {shape}')


class RandomResizedCrop:
    """timm's ``RandomResizedCropAndInterpolation``: a random crop of area ``scale`` and aspect
    ratio ``ratio`` of the image (torchvision's ``get_params``, as timm's), resized to ``size``."""

    def __init__(self, size=224, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                 interpolation='random'):
        self.size = pair(size)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.interpolation = check_interpolation(interpolation, allow_random=True)

    def pick_interpolation(self):
        if self.interpolation != 'random':
            return INTERPOLATIONS[self.interpolation]
        index = int(torch.randint(len(RANDOM_INTERPOLATIONS), ()))
        return INTERPOLATIONS[RANDOM_INTERPOLATIONS[index]]

    def __call__(self, image):
        check_image(image, 'RandomResizedCrop')
        top, left, h, w = TorchvisionRandomResizedCrop.get_params(image, self.scale, self.ratio)
        return TF.resized_crop(image, top, left, h, w, list(self.size),
                               interpolation=self.pick_interpolation(), antialias=True)


class RandomHorizontalFlip:
    """Flip the image left-right with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image):
        return image.flip(-1) if float(torch.rand(())) < self.p else image


class ResizeCenterCrop:
    """timm's eval transform: shorter side to ``floor(size / crop_pct)``, centre ``size`` crop."""

    def __init__(self, size=224, crop_pct=0.875, interpolation='bilinear'):
        if not 0 < crop_pct <= 1:
            raise ValueError(f'ResizeCenterCrop: crop_pct must be in (0, 1], got {crop_pct}')
        self.size = pair(size)
        self.crop_pct = crop_pct
        self.interpolation = INTERPOLATIONS[check_interpolation(interpolation)]

    @property
    def resize_to(self):
        """timm 0.6.5: ``int(math.floor(img_size / crop_pct))`` for a square size."""
        if self.size[0] == self.size[1]:
            return int(math.floor(self.size[0] / self.crop_pct))
        return [int(math.floor(s / self.crop_pct)) for s in self.size]

    def __call__(self, image):
        check_image(image, 'ResizeCenterCrop')
        image = TF.resize(image, self.resize_to, interpolation=self.interpolation, antialias=True)
        return TF.center_crop(image, list(self.size))


class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image):
        for transform in self.transforms:
            image = transform(image)
        return image


class TimmTrainTransform(Compose):
    """``RandomResizedCrop(size, scale, ratio, interpolation)`` then
    ``RandomHorizontalFlip(hflip)``: timm's training transform as the MLDR-KD release uses it."""

    def __init__(self, size=224, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5,
                 interpolation='random'):
        transforms = [RandomResizedCrop(size, scale, ratio, interpolation)]
        if hflip > 0:
            transforms.append(RandomHorizontalFlip(hflip))
        super().__init__(transforms)


class TimmEvalTransform(ResizeCenterCrop):
    """timm's evaluation transform (``crop_pct=0.875``: resize 256, centre crop 224)."""


TRANSFORMS = {cls.__name__: cls for cls in (
    RandomResizedCrop, RandomHorizontalFlip, ResizeCenterCrop, TimmTrainTransform,
    TimmEvalTransform)}


def build_transform(cfg):
    """A transform from ``None``, a callable, ``dict(type=<name>, **kwargs)`` or a list of them."""
    if cfg is None or callable(cfg):
        return cfg
    if isinstance(cfg, (list, tuple)):
        return Compose(build_transform(c) for c in cfg)
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'transform: expected None, a callable, a dict with a type or a list of '
                         f'them, got {cfg!r}')
    kwargs = dict(cfg)
    name = kwargs.pop('type')
    if name not in TRANSFORMS:
        raise ValueError(f'unknown transform {name!r}; kdzoo.adapters.cls.transforms has '
                         f'{sorted(TRANSFORMS)}')
    return TRANSFORMS[name](**kwargs)
