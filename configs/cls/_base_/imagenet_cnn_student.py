# ImageNet-1K, CNN students: OFA-KD's ImageNet recipe for CNN students, as its release trains them
# (github.com/Hao840/OFAKD: configs/imagenet/cnn.yaml read by train.py on top of its defaults,
# timm 0.6.5; README.md, "Training": 8 GPUs, python -m torch.distributed.launch
# --nproc_per_node=8 train.py ... --config configs/imagenet/cnn.yaml):
#   100 epochs, batch 64 per GPU x 8 GPUs = 512 (timm's training loader drops the last partial
#   batch);
#   timm's 'sgd' = SGD momentum 0.9 Nesterov, lr 0.1 (not scaled with the batch), weight decay 1e-4
#   on every parameter but biases and 1-D parameters (timm's create_optimizer_v2,
#   filter_bias_and_bn: norm weights and biases get none); schedule per epoch (timm's step
#   scheduler): 3 warm-up epochs linear from 1e-4 (train.py's --warmup-lr default), then 0.1,
#   x0.1 at epochs 30, 60 and 90; label smoothing 0.1 (the student's, in the pair configs);
#   training images: timm's RandomResizedCrop to 224 (scale 0.08-1, ratio 3/4-4/3, bilinear or
#   bicubic at random) and a horizontal flip, colour jitter 0, no auto-augment / erasing / mixup;
#   evaluation as the student's timm 0.6.5 default_cfg (ResNet: resize 256 bilinear, centre crop
#   224, crop_pct 0.875); validation every epoch, the best and the last top-1 kept;
#   BatchNorm statistics averaged over the GPUs after every epoch (train.py's --dist-bn reduce:
#   MMEngine's SyncBuffersHook).
# Teachers: timm's published ImageNet-1K weights (TimmClassifier(pretrained=True), 1000 classes, no
# fine-tuning, no checkpoint file): downloaded once into the Hugging Face cache; offline, give a
# local copy with pretrained_file=. The teacher check logs their top-1 before training.
# GPUs: this recipe is for 8 GPUs, bash tools/dist_train.sh CONFIG 8 (batch per GPU, as
# OFA-KD's). With N GPUs set train_dataloader.batch_size=512/N to keep its batch of 512, or
# auto_scale_lr.enable=True to scale the lr linearly with the batch (OFA-KD does not).
# What differs from the release: docs/losses.md, "Papers' setups" (normalisation and resize ops,
# the random streams, the stage branches' details).
#
# Data: ImageNet-1K (ILSVRC 2012) train and val images from image-net.org, in the ImageFolder
# layout of OFA-KD's README (validation images sorted into class folders):
#   data/imagenet/train/<wnid>/*.JPEG    data/imagenet/val/<wnid>/*.JPEG
default_scope = 'kdzoo'
custom_imports = dict(imports=['kdzoo.adapters.cls'], allow_failed_imports=False)

data_root = 'data/imagenet'
max_epochs = 100
warmup_epochs = 3
base_lr = 0.1
warmup_lr = 1e-4

train_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True, drop_last=True,
    dataset=dict(type='ImageFolderCls', root=data_root + '/train',
                 transform=dict(type='TimmTrainTransform', size=224, scale=(0.08, 1.0),
                                ratio=(3 / 4, 4 / 3), hflip=0.5, interpolation='random')),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
val_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True,
    dataset=dict(type='ImageFolderCls', root=data_root + '/val',
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
# No decay on norm weights and biases, on other biases, and on nn.MultiheadAttention's in_proj_bias
# (1-D, in the transformer stage branches) which MMEngine does not count as a bias: timm's split of
# the student and branch parameters (tests/tools/test_imagenet_configs.py).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=1e-4, nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'in_proj_bias': dict(decay_mult=0.0)}))
# Epoch e < 3: 1e-4 + (0.1 - 1e-4) * e / 3; then 0.1 * 0.1 ** (e // 30): timm's StepLRScheduler
# epoch by epoch (MMEngine's LinearLR reaches the base lr at `end - 1`, hence end = 3 + 1; tested).
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs + 1),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[30, 60, 90],
         gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=512, enable=False)

custom_hooks = [dict(type='SyncBuffersHook')]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=200),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=1, save_last=True,
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
