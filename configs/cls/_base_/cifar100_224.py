# CIFAR-100 at 224: the data and schedule of the heterogeneous pairs in configs/cls/, as MLDR-KD's
# release trains them (github.com/Ethan-Yang02/MLDR-KD, train.py and configs/cifar100/*.yaml; the
# same numbers as OFA-KD's configs/cifar/cnn.yaml, github.com/Hao840/OFAKD):
#   300 epochs, batch 128 per GPU (train batches drop the last partial one), SGD lr 0.05 momentum
#   0.9 Nesterov, weight decay 2e-3; 3 warm-up epochs linear from 1e-4, then cosine per epoch down
#   to 1e-3 at the last epoch; label smoothing 0.1 (the student's, in the pair configs);
#   training images: timm's RandomResizedCrop to 224 (scale 0.08-1, ratio 3/4-4/3, bilinear or
#   bicubic at random) and a horizontal flip, no colour jitter / auto-augment / erasing / mixup;
#   evaluation: resize to 256, centre crop 224 (timm's crop_pct 0.875, bilinear); validation of
#   the student every epoch, the best and the last top-1 reported (the log prints every epoch's
#   top-1; the CheckpointHook logs and keeps the best).
# GPUs: the release's README runs every experiment on one GPU (GPU_IDS=0; "use GPU_IDS=0,2 for
# multiple GPUs") and reports reproducing the paper on 4 x RTX 3090; the batch is per GPU and the
# lr is not scaled with it. OFA-KD's README has only an ImageNet command (8 GPUs), none for
# CIFAR-100.
# What still differs from the release (docs/losses.md, "Papers' setups"): the normalisation (each
# model normalises with its own mean/std, ImageNet's by default; the release uses CIFAR-100's
# for teacher and student), the resize ops (torchvision's tensor ops on uint8, not PIL's) and
# the RNG streams.
#
# Data: the python-pickle release of CIFAR-100 (cifar-100-python.tar.gz from
# https://www.cs.toronto.edu/~kriz/cifar.html) unpacked so that these files exist:
#   data/cifar100/cifar-100-python/{train,test,meta}
default_scope = 'kdzoo'
custom_imports = dict(imports=['kdzoo.adapters.cls'], allow_failed_imports=False)

data_root = 'data/cifar100'
max_epochs = 300
warmup_epochs = 3
base_lr = 0.05
warmup_lr = 1e-4
min_lr = 1e-3

train_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True, drop_last=True,
    dataset=dict(type='Cifar100Cls', root=data_root, split='train',
                 transform=dict(type='TimmTrainTransform', size=224, scale=(0.08, 1.0),
                                ratio=(3 / 4, 4 / 3), hflip=0.5, interpolation='random')),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
val_dataloader = dict(
    batch_size=256, num_workers=8, persistent_workers=True,
    dataset=dict(type='Cifar100Cls', root=data_root, split='test',
                 transform=dict(type='TimmEvalTransform', size=224, crop_pct=0.875,
                                interpolation='bilinear')),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=2e-3, nesterov=True))
# Epoch e < 3: 1e-4 + (0.05 - 1e-4) * e / 3; then 1e-3 + (0.05 - 1e-3) * (1 + cos(pi * t / 296)) / 2
# with t = e - 3, i.e. 1e-3 at the last epoch (e = 299): the release's set_learning_rate, epoch by
# epoch (MMEngine's LinearLR reaches the base lr at `end - 1`, hence end = 3 + 1; tested).
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs + 1),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup_epochs, end=max_epochs,
         T_max=max_epochs - warmup_epochs - 1, eta_min=min_lr),
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=25, max_keep_ckpts=1, save_last=True,
                    save_best='cls/top1', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True)
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False
