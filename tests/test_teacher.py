"""Teacher loading: config file / scoped path / inline dict / module, cfg_options, checkpoints."""
import subprocess

import pytest
import torch
from helpers import TinyCNN
from mmengine.registry import Registry

from kdzoo.checkpoint import CheckpointError
from kdzoo.teacher import build_teacher, model_config

TEST_MODELS = Registry('kdzoo_test_models')
TEST_MODELS.register_module(module=TinyCNN)


def build(cfg):
    return TEST_MODELS.build(cfg)


def test_inline_dict_with_cfg_options_and_checkpoint(tmp_path):
    src = TinyCNN(width=4, num_classes=3)
    torch.save(src.state_dict(), tmp_path / 't.pth')
    with pytest.warns(UserWarning, match='no checkpoint'):
        random_teacher = build_teacher(dict(config=dict(type='TinyCNN', width=4)), build)
    assert random_teacher.fc.out_features == 5
    teacher = build_teacher(dict(config=dict(type='TinyCNN', width=4),
                                 cfg_options={'num_classes': 3},
                                 checkpoint=str(tmp_path / 't.pth')),
                            build)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert torch.equal(teacher.fc.weight, src.fc.weight)


def test_config_file_and_model_prefixed_options(tmp_path):
    cfg = tmp_path / 'teacher.py'
    cfg.write_text("model = dict(type='TinyCNN', width=4, num_classes=5)\n")
    assert model_config(str(cfg), {'model.num_classes': 7}).num_classes == 7
    with pytest.raises(FileNotFoundError, match='teacher config not found: .*nope.py'):
        model_config(str(tmp_path / 'nope.py'))


def test_bad_checkpoint_fails_before_training(tmp_path):
    with pytest.raises(CheckpointError, match='checkpoint not found'):
        build_teacher(dict(config=dict(type='TinyCNN'), checkpoint=str(tmp_path / 'x.pth')), build)
    torch.save(TinyCNN(num_classes=9).state_dict(), tmp_path / 'nine.pth')
    with pytest.raises(CheckpointError, match='fc.weight \\(9, 16\\) vs model \\(5, 16\\)'):
        build_teacher(dict(config=dict(type='TinyCNN'), checkpoint=str(tmp_path / 'nine.pth')),
                      build)
    with pytest.raises(ValueError, match='allowed keys'):
        build_teacher(dict(config=dict(type='TinyCNN'), ckpt='x'), build)


def test_module_passes_through_frozen():
    module = TinyCNN().train()
    teacher = build_teacher(module, build)
    assert teacher is module and not teacher.training


def test_mmseg_and_mmdet_scopes_resolve_to_the_forks_without_installing(monkeypatch):
    """kdzoo/patches.py: `mmseg::` must resolve to the fork's configs, and MMEngine must never try
    to `pip install mmsegmentation` (it would overwrite the fork)."""
    from mmengine.utils import package_utils

    import kdzoo  # noqa: F401

    def refuse(*args, **kwargs):
        raise AssertionError(f'an install was attempted: {args}')
    monkeypatch.setattr(package_utils, 'call_command', refuse)
    monkeypatch.setattr(subprocess, 'check_call', refuse)
    seg = model_config('mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
                       {'decode_head.num_classes': 7})
    assert seg.type == 'EncoderDecoder' and seg.decode_head.num_classes == 7
    det = model_config('mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')
    assert det.type == 'RetinaNet' and det.backbone.depth == 18


def test_not_strict_teacher_of_another_architecture_is_refused(tmp_path):
    """strict=False with a checkpoint of which nothing loads would distil from a random teacher."""
    torch.save({'backbone.conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(CheckpointError, match=(
            f'^checkpoint {tmp_path}/other.pth fills 0 of the 16 tensors of TinyCNN \\(0%\\), '
            'under the 50% that strict=False accepts')):
        build_teacher(dict(config=dict(type='TinyCNN'), checkpoint=str(tmp_path / 'other.pth'),
                           strict=False), build)


def test_the_checkpoint_classes_are_kept_on_the_teacher_unless_opted_out(tmp_path):
    from kdzoo.class_names import CheckpointClasses
    path = str(tmp_path / 't.pth')
    torch.save(dict(state_dict=TinyCNN(width=4).state_dict(),
                    meta=dict(dataset_meta=dict(classes=('a', 'b', 'c', 'd', 'e')))), path)
    cfg = dict(config=dict(type='TinyCNN', width=4), checkpoint=path)
    assert build_teacher(cfg, build).checkpoint_classes == CheckpointClasses(
        ('a', 'b', 'c', 'd', 'e'), path, 'teacher', 'distill_cfg.teacher.check_classes=False')
    assert not hasattr(build_teacher(dict(cfg, check_classes=False), build), 'checkpoint_classes')


def test_an_unknown_teacher_key_is_named_and_a_non_boolean_opt_out_refused():
    with pytest.raises(ValueError) as err:
        build_teacher(dict(config=dict(type='TinyCNN'), check_class=False), build)
    assert str(err.value).startswith("distill_cfg.teacher: unknown keys ['check_class']; allowed")
    with pytest.raises(ValueError) as err:
        build_teacher(dict(config=dict(type='TinyCNN'), check_classes='no'), build)
    assert str(err.value) == "distill_cfg.teacher.check_classes must be True or False, got 'no'"
