"""Every config of configs/cls/ parses, wraps, reads the data set its file name carries
(``_cifar100``, ``_imagenet``, ``_tiny-imagenet``), and its distill items fit the real-size models.

The real models (ResNet-18/50, Swin-T, ViT-S, DeiT-T, Mixer-B/16, ConvNeXt-T, EfficientViM at 224)
are built on the meta device, pretrained teachers without their weights: no memory, no compute,
but every shape is real, so each item's taps, connector and the tensor pairs its loss receives
are checked for every config in about a second. The losses then run on random tensors of those
shapes. (Training each ImageNet / Tiny-ImageNet config on generated data: test_imagenet_configs.)
"""
import os
import re
import warnings

import pytest
import timm
import torch
from tools_helpers import REPO, cls_config_files

from kdzoo.teacher import teacher_configs

CONFIGS = cls_config_files()
# per data set: (dataset type, data root, number of classes); configs/cls/_base_/*.py
DATASETS = {
    'cifar100': ('Cifar100Cls', 'data/cifar100', 100),
    'imagenet': ('ImageFolderCls', 'data/imagenet/train', 1000),
    'tiny-imagenet': ('TinyImageNetCls', 'data/tiny-imagenet-200', 200),
}
MODULE_PATH = re.compile(r'^[A-Za-z_]\w*(\.\w+)*$')


def config_id(path):
    return os.path.relpath(path, os.path.join(REPO, 'configs', 'cls'))


def load(path):
    from kdzoo.adapters import wrap
    from kdzoo.runner import load_config
    return wrap(load_config(path))


def dataset_of(path):
    """The data set the file name carries (every configs/cls/ file carries one)."""
    matches = [name for name in DATASETS if path.endswith(f'_{name}.py')]
    assert len(matches) == 1, f'{config_id(path)}: the file name ends with none of ' \
        f'_{{{",".join(DATASETS)}}}.py'
    return matches[0]


def test_every_pair_and_method_is_there():
    names = {config_id(p) for p in CONFIGS}
    assert sorted(CONFIGS) == sorted(f for d in DATASETS for f in cls_config_files(d))
    for method in ('msdcrd', 'lfcc', 'mldrkd', 'kd', 'dkd', 'ofa'):
        assert f'{method}_swin-t_to_r18_cifar100.py' in names
    for method in ('msdcrd', 'mldrkd'):
        assert f'{method}_vit-s_to_r18_cifar100.py' in names
    assert 'mldrkd_mixer-b16_to_r18_cifar100.py' in names
    # two teachers of different families (distill_cfg.teachers), items on each and their ensemble
    assert 'mldrkd_swin-t_and_convnext-t_to_r18_cifar100.py' in names
    # the Mamba family (EfficientViM, a state-space model) as teacher and as student
    assert {'mldrkd_efficientvim-m2_to_r18_cifar100.py',
            'mldrkd_convnext-t_to_efficientvim-m1_cifar100.py'} <= names
    assert {'teachers/swin-t_cifar100.py', 'teachers/vit-s_cifar100.py',
            'teachers/mixer-b16_cifar100.py', 'teachers/efficientvim-m2_cifar100.py',
            'teachers/convnext-t_cifar100.py'} <= names
    # ImageNet-1K: OFA-KD's heterogeneous pairs, both directions, with timm-pretrained teachers
    for method in ('ofa', 'lfcc'):
        for pair in ('swin-t_to_r18', 'deit-t_to_r18', 'r50_to_deit-t'):
            assert f'{method}_{pair}_imagenet.py' in names
    # Tiny-ImageNet: MLDR-KD's pairs and their fine-tuned teachers
    for teacher in ('swin-t', 'vit-s', 'mixer-b16'):
        assert f'mldrkd_{teacher}_to_r18_tiny-imagenet.py' in names
        assert f'teachers/{teacher}_tiny-imagenet.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_config_parses_and_its_items_build(path):
    from kdzoo.adapters.cls import RESERVED
    from kdzoo.registry import build
    cfg = load(path)
    dataset_type, root, num_classes = DATASETS[dataset_of(path)]
    assert cfg.default_scope == 'kdzoo'
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.type == dataset_type
    assert cfg.train_dataloader.dataset.root == root
    if 'distill_cfg' not in cfg:  # a teacher config: timm's published ImageNet weights
        assert cfg.model.type == 'TimmClassifier' and cfg.model.num_classes == num_classes
        assert timm.is_model(cfg.model.model_name) and cfg.model.pretrained is True
        assert timm.models.get_pretrained_cfg(cfg.model.model_name).hf_hub_id
        return
    model = cfg.model
    assert model.type == 'kdzoo.DistillClassifier'
    teachers = teacher_configs(model.distill_cfg)
    for side in (model.student, *(teacher.config for teacher in teachers.values())):
        assert timm.is_model(side.model_name) and side.num_classes == num_classes
        assert side.img_size == 224
    for teacher in teachers.values():
        if dataset_of(path) == 'imagenet':  # timm's published ImageNet-1K weights, no fine-tuning
            assert teacher.checkpoint is None and teacher.config.pretrained is True
            assert timm.models.get_pretrained_cfg(teacher.config.model_name).tag.endswith('in1k')
        else:  # a teacher fine-tuned by configs/cls/teachers/
            assert teacher.checkpoint.startswith('checkpoints/')
    connectors = model.distill_cfg.get('connectors', {})
    for cfg_ in connectors.values():
        build(cfg_)
    for item in model.distill_cfg.losses:
        build(item['loss'])
        taps = [item['student']] if isinstance(item['student'], str) else item['student']
        sources = [item['teacher']] if isinstance(item['teacher'], str) else item['teacher']
        for tap in taps + [source.rpartition(':')[2] for source in sources]:
            assert tap in RESERVED or MODULE_PATH.match(tap), tap
        for source in sources:  # NAME:TAP names one of the teachers; a bare TAP needs one teacher
            assert source.rpartition(':')[0] in teachers if ':' in source else len(teachers) == 1
        if item.get('connector'):
            assert item['connector'].split('.')[0] in connectors


@pytest.mark.parametrize('path', [p for p in CONFIGS if os.sep + 'teachers' + os.sep not in p],
                         ids=config_id)
def test_items_fit_the_real_models(path):
    """Build the whole distilling model at real size (meta device), run the readouts and the
    connectors, then every loss on random tensors of the shapes it receives."""
    from kdzoo.registry import build
    cfg = load(path)
    for teacher in teacher_configs(cfg.model.distill_cfg).values():
        teacher.checkpoint = None
        teacher.config.pretrained = False  # the shapes, not the weights
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
