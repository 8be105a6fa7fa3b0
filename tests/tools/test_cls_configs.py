"""Every config of configs/cls/ parses, wraps, and its distill items fit the real-size models.

The real models (ResNet-18, Swin-T, ViT-S, Mixer-B/16, ConvNeXt-T, EfficientViM at 224) are built
on the meta device: no memory, no compute, but every shape is real, so each item's taps, connector
and the tensor pairs its loss receives are checked for every config in well under a second. The
losses then run on random tensors of those shapes.
"""
import os
import re
import warnings

import pytest
import timm
import torch

from tools_helpers import REPO, cls_config_files

CONFIGS = cls_config_files()
MODULE_PATH = re.compile(r'^[A-Za-z_]\w*(\.\w+)*$')


def config_id(path):
    return os.path.relpath(path, os.path.join(REPO, 'configs', 'cls'))


def load(path):
    from kdzoo.adapters import wrap
    from tools.train import load_config
    return wrap(load_config(path))


def test_every_pair_and_method_is_there():
    names = {config_id(p) for p in CONFIGS}
    for method in ('msdcrd', 'lfcc', 'mldrkd', 'kd', 'dkd', 'ofa'):
        assert f'{method}_swin-t_to_r18_cifar100.py' in names
    for method in ('msdcrd', 'mldrkd'):
        assert f'{method}_vit-s_to_r18_cifar100.py' in names
    assert 'mldrkd_mixer-b16_to_r18_cifar100.py' in names
    # the Mamba family (EfficientViM, a state-space model) as teacher and as student
    assert {'mldrkd_efficientvim-m2_to_r18_cifar100.py',
            'mldrkd_convnext-t_to_efficientvim-m1_cifar100.py'} <= names
    assert {'teachers/swin-t_cifar100.py', 'teachers/vit-s_cifar100.py',
            'teachers/mixer-b16_cifar100.py', 'teachers/efficientvim-m2_cifar100.py',
            'teachers/convnext-t_cifar100.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_config_parses_and_its_items_build(path):
    from kdzoo.adapters.cls import RESERVED
    from kdzoo.registry import build
    cfg = load(path)
    assert cfg.default_scope == 'kdzoo'
    assert cfg.train_dataloader.dataset.type == 'Cifar100Cls'
    assert cfg.train_dataloader.dataset.root == 'data/cifar100'
    if 'distill_cfg' not in cfg:  # a teacher config: timm's published ImageNet weights
        assert cfg.model.type == 'TimmClassifier' and cfg.model.num_classes == 100
        assert timm.is_model(cfg.model.model_name) and cfg.model.pretrained is True
        assert timm.models.get_pretrained_cfg(cfg.model.model_name).hf_hub_id
        return
    model = cfg.model
    assert model.type == 'kdzoo.DistillClassifier'
    teacher = model.distill_cfg.teacher
    for side in (model.student, teacher.config):
        assert timm.is_model(side.model_name) and side.num_classes == 100
        assert side.img_size == 224
    assert teacher.checkpoint.startswith('checkpoints/')
    connectors = model.distill_cfg.get('connectors', {})
    for cfg_ in connectors.values():
        build(cfg_)
    for item in model.distill_cfg.losses:
        build(item['loss'])
        taps = [item['student']] if isinstance(item['student'], str) else item['student']
        for tap in taps + [item['teacher']]:
            assert tap in RESERVED or MODULE_PATH.match(tap), tap
        if item.get('connector'):
            assert item['connector'].split('.')[0] in connectors


@pytest.mark.parametrize('path', [p for p in CONFIGS if os.sep + 'teachers' + os.sep not in p],
                         ids=config_id)
def test_items_fit_the_real_models(path):
    """Build the whole distilling model at real size (meta device), run the readouts and the
    connectors, then every loss on random tensors of the shapes it receives."""
    from kdzoo.registry import build
    cfg = load(path)
    cfg.model.distill_cfg.teacher.checkpoint = None
    with torch.device('meta'), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # no teacher checkpoint
        model = build(cfg.model)
    images = torch.empty(2, 3, 32, 32, device='meta')
    with torch.no_grad(), model.distiller.step():
        _, student, teacher = model.recorded_step(images, torch.tensor([3, 7], device='meta'))
        pairs = [model.distiller.item_values(item, student, teacher)
                 for item in model.distiller.items]
    target = torch.tensor([3, 7])
    for item, item_pairs in zip(model.distiller.items, pairs):
        loss = model.distiller.losses[item.name]  # parameter-free: the device does not matter
        for s, t in item_pairs:
            value = loss(torch.randn(s.shape), torch.randn(t.shape), target=target)
            assert value.dim() == 0 and torch.isfinite(value), item.name
