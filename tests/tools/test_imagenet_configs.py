"""The ImageNet-1K and Tiny-ImageNet configs of configs/cls/: each trains two iterations through
tools/train.py on generated data of its own folder layout (kdzoo.toydata.imagenet), and their
recipes are OFA-KD's (github.com/Hao840/OFAKD configs/imagenet/*.yaml with timm 0.6.5's
schedulers and optimizer factory, restated here).

Training runs the config as it is (the student at full size, its loop, schedules, hooks,
evaluation) with only these changes: the data roots, 2 images per batch and no workers, one epoch
of 4 training images (2 iterations), and a random teacher (pretrained weights cannot be downloaded
here; no fine-tuned checkpoint exists) made cheaper (:data:`CHEAPER`: fewer blocks with the same
widths, or smaller inputs, so every item and connector is the config's; the full teachers are built
on the meta device by test_cls_configs.py). A fine-tuning config of configs/cls/teachers/ trains its
model so reduced.
"""
import math
import os

import pytest
import torch
from tools_helpers import REPO, cls_config_files

IMAGENET = cls_config_files('imagenet')
TINY_IMAGENET = cls_config_files('tiny-imagenet')
CLS = os.path.join(REPO, 'configs', 'cls')
# timm model name prefix -> TimmClassifier arguments: the same model with fewer blocks (Mixer-B/16's
# builder fixes its 12 blocks: it runs on 112 px instead, the logits its items read unchanged)
CHEAPER = {
    'swin_tiny_patch4_window7_224': 'depths=(1,1,1,1)',
    'deit_tiny_patch16_224': 'depth=4',
    'vit_small_patch16_224': 'depth=4',
    'resnet50': 'layers=(1,1,1,1)',
    'mixer_b16_224': 'img_size=112',
}


def config_id(path):
    return os.path.relpath(path, CLS)


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    """Both layouts: 2 classes x (2 training, 1 validation) images of 64 px."""
    from kdzoo.toydata import make_imagenet_dataset, make_tiny_imagenet_dataset
    root = tmp_path_factory.mktemp('layouts')
    return dict(imagenet=make_imagenet_dataset(str(root / 'imagenet'), 2, (2, 1)),
                tiny=make_tiny_imagenet_dataset(str(root / 'tiny'), 2, (2, 1)))


def small_run_options(path, generated):
    """The cfg-options of the module docstring for the config at ``path``."""
    if path in IMAGENET:
        roots = dict(train=generated['imagenet']['train'], val=generated['imagenet']['val'])
    else:
        roots = dict(train=generated['tiny'], val=generated['tiny'])
    options = ['train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    for loader, split in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        options += [f'{loader}_dataloader.dataset.root={roots[split]}',
                    f'{loader}_dataloader.batch_size=2', f'{loader}_dataloader.num_workers=0',
                    f'{loader}_dataloader.persistent_workers=False']
    if os.sep + 'teachers' + os.sep in path:
        teacher, key = load(path).model, 'model'
    else:
        teacher, key = load(path).distill_cfg.teacher.config, 'distill_cfg.teacher.config'
        options.append('distill_cfg.teacher.checkpoint=None')
    cheaper = [f'{key}.{v}' for k, v in CHEAPER.items() if teacher.model_name.startswith(k)]
    assert len(cheaper) == 1, f'no CHEAPER entry for {teacher.model_name}'
    return options + [f'{key}.pretrained=False'] + cheaper


@pytest.mark.parametrize('path', IMAGENET + TINY_IMAGENET, ids=config_id)
def test_config_trains_two_iterations_on_its_folder_layout(path, generated, tmp_path):
    from tools.train import main
    runner = main([path, '--work-dir', str(tmp_path), '--cfg-options',
                   *small_run_options(path, generated)])
    assert runner.iter == 2 and runner.epoch == 1
    assert math.isfinite(runner.message_hub.get_scalar('train/loss').current())
    logs = open(runner.logger.log_file).read()
    assert 'loss_cls' in logs and 'cls/top1' in logs
    if 'distill_cfg' in runner.cfg:
        assert 'distill.loss_' in logs and 'teacher check' in logs


# --- the recipes: OFA-KD's configs/imagenet/*.yaml with timm 0.6.5 -----------------------------

def lrs_per_epoch(cfg):
    """The lr of every epoch under the config's optimizer and schedulers."""
    from mmengine.registry import PARAM_SCHEDULERS
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))],
                                lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [PARAM_SCHEDULERS.build(dict(c, optimizer=optimizer))
                  for c in cfg.param_scheduler]
    lrs = []
    for _ in range(cfg.train_cfg.max_epochs):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    return lrs


def timm_step_lr(epoch, base=0.1, warmup_lr=1e-4, warmup=3, decay_epochs=30, rate=0.1):
    """timm 0.6.5 StepLRScheduler._get_lr (cnn.yaml: sched step, decay_epochs 30, warmup 3)."""
    if epoch < warmup:
        return warmup_lr + epoch * (base - warmup_lr) / warmup
    return base * rate ** (epoch // decay_epochs)


def timm_cosine_lr(epoch, base=5e-4, warmup_lr=5e-7, warmup=20, total=300, min_lr=1e-6):
    """timm 0.6.5 CosineLRScheduler._get_lr, warmup_prefix off (vit_mlp.yaml)."""
    if epoch < warmup:
        return warmup_lr + epoch * (base - warmup_lr) / warmup
    return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * epoch / total))


def load(name):
    from kdzoo.runner import load_config
    return load_config(os.path.join(CLS, name))


def test_cnn_student_recipe_is_ofa_cnn_yaml():
    cfg = load('ofa_deit-t_to_r18_imagenet.py')
    lrs = lrs_per_epoch(cfg)
    assert len(lrs) == 100
    assert max(abs(a - timm_step_lr(e)) for e, a in enumerate(lrs)) < 1e-12
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.1, momentum=0.9,
                                               weight_decay=1e-4, nesterov=True)
    train, val = cfg.train_dataloader, cfg.val_dataloader
    assert (train.batch_size, cfg.auto_scale_lr.base_batch_size) == (64, 64 * 8)
    assert train.drop_last and train.dataset.type == 'ImageFolderCls'
    assert train.dataset.transform == dict(type='TimmTrainTransform', size=224, scale=(0.08, 1.0),
                                           ratio=(3 / 4, 4 / 3), hflip=0.5,
                                           interpolation='random')
    # timm 0.6.5 resnet18 default_cfg: crop_pct 0.875, bilinear
    assert val.dataset.transform == dict(type='TimmEvalTransform', size=224, crop_pct=0.875,
                                         interpolation='bilinear')
    assert cfg.model.label_smoothing == 0.1 and cfg.train_cfg.val_interval == 1
    assert dict(type='SyncBuffersHook') in cfg.custom_hooks
    assert [item['loss']['eps'] for item in cfg.distill_cfg.losses] == [1.5] * 5  # README


def test_vit_student_recipe_is_ofa_vit_mlp_yaml():
    """The cosine of timm counts from epoch 0; MMEngine's warm-up and cosine multiply to it."""
    cfg = load('ofa_r50_to_deit-t_imagenet.py')
    lrs = lrs_per_epoch(cfg)
    assert len(lrs) == 300
    relative = [abs(a - timm_cosine_lr(e)) / timm_cosine_lr(e) for e, a in enumerate(lrs)]
    assert max(relative[20:]) < 2e-5 and max(relative[:20]) < 0.01
    assert all(a <= timm_cosine_lr(e) for e, a in enumerate(lrs[:20]))
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999),
                                               eps=1e-8, weight_decay=0.05)
    assert cfg.optim_wrapper.clip_grad.max_norm == 5.0
    assert (cfg.train_dataloader.batch_size, cfg.auto_scale_lr.base_batch_size) == (128, 1024)
    # timm 0.6.5 deit_tiny_patch16_224 default_cfg: crop_pct 0.9, bicubic
    assert cfg.val_dataloader.dataset.transform == dict(
        type='TimmEvalTransform', size=224, crop_pct=0.9, interpolation='bicubic')
    ema = [h for h in cfg.custom_hooks if h['type'] == 'EMAHook']
    assert len(ema) == 1 and abs(ema[0]['momentum'] - (1 - 0.99996)) < 1e-12
    assert cfg.model.drop_path_rate == 0.0 and cfg.model.label_smoothing == 0.1


@pytest.mark.parametrize('name', ['ofa_swin-t_to_r18_imagenet.py', 'ofa_r50_to_deit-t_imagenet.py'])
def test_weight_decay_spares_biases_and_1d_parameters_as_timm(name):
    """timm's create_optimizer_v2 (filter_bias_and_bn, on OFA-KD's distiller module: no
    no_weight_decay list) puts every 1-D parameter and every ``.bias`` in a group without
    decay; MMEngine's paramwise_cfg gives the same split of the student and the connectors."""
    import warnings

    from mmengine.optim import build_optim_wrapper

    from kdzoo.adapters import wrap
    from kdzoo.registry import build
    cfg = wrap(load(name))
    cfg.model.distill_cfg.teacher.config.pretrained = False
    with torch.device('meta'), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # no teacher checkpoint
        model = build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {id(p): group['weight_decay'] for group in wrapper.optimizer.param_groups
             for p in group['params']}
    base = cfg.optim_wrapper.optimizer.weight_decay
    names = dict(model.named_parameters())
    assert len(decay) == len(names)
    for key, param in names.items():
        timm_decay = 0.0 if param.ndim <= 1 or key.endswith('.bias') else base
        assert decay[id(param)] == timm_decay, key
