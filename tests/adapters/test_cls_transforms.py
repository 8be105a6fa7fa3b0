"""The timm-style transforms of MLDR-KD's released CIFAR-100 recipe on uint8 (3, H, W) tensors."""
import math

import pytest
import torch

from kdzoo.adapters.cls.transforms import (
    RandomHorizontalFlip,
    RandomResizedCrop,
    ResizeCenterCrop,
    TimmEvalTransform,
    TimmTrainTransform,
    build_transform,
)


def image(h=32, w=32, seed=0):
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_train_transform_gives_uint8_224_and_varies():
    torch.manual_seed(0)
    transform = TimmTrainTransform(size=224)
    x = image()
    outs = [transform(x) for _ in range(4)]
    for out in outs:
        assert out.dtype == torch.uint8 and out.shape == (3, 224, 224)
    assert not all(torch.equal(outs[0], o) for o in outs[1:])


def test_random_resized_crop_areas_and_ratios_follow_scale_and_ratio():
    """The crop box (recorded from torchvision's get_params, the algorithm timm uses) covers
    scale 0.08-1 of the image with aspect ratios within 3/4-4/3."""
    torch.manual_seed(0)
    from torchvision.transforms import RandomResizedCrop as TV
    boxes = [TV.get_params(image(), (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(500)]
    areas = [h * w / 1024 for _, _, h, w in boxes]
    ratios = [w / h for _, _, h, w in boxes]
    assert 0.05 < min(areas) < 0.15 and max(areas) > 0.9
    # rounding to whole pixels on a 32-px image widens the ratio range slightly
    assert min(ratios) > 0.6 and max(ratios) < 1.6


def test_whole_image_crop_is_a_plain_resize():
    crop = RandomResizedCrop(64, scale=(1.0, 1.0), ratio=(1.0, 1.0), interpolation='bilinear')
    x = image()
    expected = torch.nn.functional.interpolate(x[None].float(), size=(64, 64), mode='bilinear',
                                               align_corners=False, antialias=True)
    assert (crop(x).float() - expected[0].round()).abs().max() <= 1


def test_random_interpolation_uses_bilinear_and_bicubic():
    torch.manual_seed(0)
    crop = RandomResizedCrop(64, scale=(1.0, 1.0), ratio=(1.0, 1.0), interpolation='random')
    x = image()
    bilinear = RandomResizedCrop(64, (1.0, 1.0), (1.0, 1.0), 'bilinear')(x)
    bicubic = RandomResizedCrop(64, (1.0, 1.0), (1.0, 1.0), 'bicubic')(x)
    seen = set()
    for _ in range(20):
        out = crop(x)
        seen.add('bilinear' if torch.equal(out, bilinear) else
                 'bicubic' if torch.equal(out, bicubic) else 'other')
    assert seen == {'bilinear', 'bicubic'}


def test_flip_probability():
    torch.manual_seed(0)
    x = image()
    flip = RandomHorizontalFlip(0.5)
    flipped = sum(torch.equal(flip(x), x.flip(-1)) for _ in range(400))
    assert 150 < flipped < 250
    assert torch.equal(RandomHorizontalFlip(0.0)(x), x)


def test_eval_transform_resizes_to_256_then_centre_crops_224():
    transform = TimmEvalTransform(size=224, crop_pct=0.875)
    assert transform.resize_to == 256 == math.floor(224 / 0.875)
    x = image()
    out = transform(x)
    assert out.dtype == torch.uint8 and out.shape == (3, 224, 224)
    resized = torch.nn.functional.interpolate(x[None].float(), size=(256, 256), mode='bilinear',
                                              align_corners=False, antialias=True)[0]
    assert (out.float() - resized[:, 16:240, 16:240].round()).abs().max() <= 1
    torch.manual_seed(1)
    assert torch.equal(transform(x), out)  # deterministic


def test_eval_keeps_aspect_ratio_of_non_square_images():
    out = ResizeCenterCrop(size=224)(image(32, 64))
    assert out.shape == (3, 224, 224)


def test_build_transform_from_configs():
    assert build_transform(None) is None
    t = build_transform(dict(type='TimmTrainTransform', size=32))
    assert isinstance(t, TimmTrainTransform) and t(image()).shape == (3, 32, 32)
    chain = build_transform([dict(type='ResizeCenterCrop', size=16, crop_pct=1.0),
                             dict(type='RandomHorizontalFlip', p=1.0)])
    assert torch.equal(chain(image()), ResizeCenterCrop(16, 1.0)(image()).flip(-1))
    with pytest.raises(ValueError, match="unknown transform 'Nope'"):
        build_transform(dict(type='Nope'))
    with pytest.raises(ValueError, match="unknown interpolation 'lanczos'"):
        RandomResizedCrop(interpolation='lanczos')
    with pytest.raises(ValueError, match=r'expected a \(3, H, W\) image tensor, got \(32, 32\)'):
        TimmTrainTransform()(torch.zeros(32, 32, dtype=torch.uint8))


def write_cifar(root, n=4):
    import pickle

    import numpy as np
    folder = root / 'cifar-100-python'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split in ('train', 'test'):
        (folder / split).write_bytes(pickle.dumps({
            b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b'fine_labels': list(range(n))}))


def test_datasets_apply_the_transform_of_their_config(tmp_path):
    """configs/cls/_base_/cifar100_224.py's datasets: 32-px CIFAR images come out at 224."""
    from kdzoo.adapters.cls import Cifar100Cls
    write_cifar(tmp_path)
    train = Cifar100Cls(str(tmp_path), 'train', transform=dict(type='TimmTrainTransform', size=224))
    val = Cifar100Cls(str(tmp_path), 'test', transform=dict(type='TimmEvalTransform', size=224))
    plain = Cifar100Cls(str(tmp_path), 'test')
    item = train[1]
    assert item['inputs'].dtype == torch.uint8 and item['inputs'].shape == (3, 224, 224)
    assert item['data_samples'] == 1
    assert torch.equal(val[2]['inputs'], TimmEvalTransform(224)(plain[2]['inputs']))
    assert plain[2]['inputs'].shape == (3, 32, 32)
