"""configs/cls/_base_/cifar100_224.py is MLDR-KD's released CIFAR-100 recipe (Ethan-Yang02/MLDR-KD,
train.py and configs/cifar100/*.yaml): optimizer, per-epoch learning rates, transforms,
validation."""
import math
import os

import torch
from mmengine.config import Config
from mmengine.registry import PARAM_SCHEDULERS
from tools_helpers import REPO

CFG = Config.fromfile(os.path.join(REPO, 'configs', 'cls', '_base_', 'cifar100_224.py'))


def release_lr(epoch, base=0.05, warmup_lr=1e-4, warmup=3, total=300, min_lr=1e-3):
    """The release's set_learning_rate (train.py), one value per epoch."""
    if epoch < warmup:
        return warmup_lr + (base - warmup_lr) * epoch / warmup
    progress = min(max((epoch - warmup) / max(total - warmup - 1, 1), 0.0), 1.0)
    return min_lr + 0.5 * (base - min_lr) * (1.0 + math.cos(math.pi * progress))


def test_learning_rate_of_every_epoch_is_the_releases():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))],
                                **{k: v for k, v in CFG.optim_wrapper.optimizer.items()
                                   if k != 'type'})
    schedulers = [PARAM_SCHEDULERS.build(dict(cfg, optimizer=optimizer))
                  for cfg in CFG.param_scheduler]
    lrs = []
    for _ in range(CFG.max_epochs):
        lrs.append(optimizer.param_groups[0]['lr'])
        for scheduler in schedulers:
            scheduler.step()
    expected = [release_lr(e) for e in range(300)]
    assert max(abs(a - b) for a, b in zip(lrs, expected)) < 1e-12
    assert lrs[0] == 1e-4 and abs(lrs[-1] - 1e-3) < 1e-12


def test_optimizer_data_and_validation():
    assert CFG.optim_wrapper.optimizer == dict(type='SGD', lr=0.05, momentum=0.9,
                                               weight_decay=2e-3, nesterov=True)
    train, val = CFG.train_dataloader, CFG.val_dataloader
    assert train.batch_size == 128 and train.drop_last
    assert train.dataset.transform == dict(type='TimmTrainTransform', size=224, scale=(0.08, 1.0),
                                           ratio=(3 / 4, 4 / 3), hflip=0.5,
                                           interpolation='random')
    assert val.dataset.transform == dict(type='TimmEvalTransform', size=224, crop_pct=0.875,
                                         interpolation='bilinear')
    assert 'augment' not in train.dataset
    assert CFG.train_cfg.max_epochs == 300 and CFG.train_cfg.val_interval == 1
    checkpoint = CFG.default_hooks.checkpoint
    assert checkpoint.save_best == 'cls/top1' and checkpoint.save_last
