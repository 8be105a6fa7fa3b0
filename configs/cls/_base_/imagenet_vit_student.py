# ImageNet-1K, transformer students (DeiT-T): OFA-KD's ImageNet recipe for ViT / MLP students
# (github.com/Hao840/OFAKD: configs/imagenet/vit_mlp.yaml read by train.py, timm 0.6.5; 8 GPUs as
# its README's command). What it shares with ./imagenet_cnn_student.py (data layout, training
# crop and flip, no decay on biases and 1-D parameters, BatchNorm averaging, validation every
# epoch) is inherited; what it changes:
#   300 epochs, batch 128 per GPU x 8 GPUs = 1024; timm's 'adamw' (AdamW, betas 0.9/0.999, eps
#   1e-8), lr 5e-4 (not scaled), weight decay 0.05; gradient norm clipped at 5; schedule per epoch
#   (timm's cosine scheduler, warmup_prefix off): 20 warm-up epochs linear from 5e-7, then
#   1e-6 + (5e-4 - 1e-6) * (1 + cos(pi * e / 300)) / 2 at epoch e (the cosine counts from epoch 0,
#   not from the end of the warm-up); label smoothing 0.1; drop path 0; EMA of the weights with
#   decay 0.99996 (--model-ema: MMEngine's EMAHook, momentum 1 - 0.99996); evaluation as DeiT's
#   timm 0.6.5 default_cfg: resize 248 bicubic, centre crop 224 (crop_pct 0.9).
# Not reproduced (kdzoo's transforms have no such operations yet; the student sees only the crop
# and flip): RandAugment rand-m9-mstd0.5-inc1 (timm applies no colour jitter when auto-augment is
# on, so color_jitter 0.4 is inactive in the release too), random erasing 0.25 (pixel mode),
# mixup 0.8 / cutmix 1.0 (with them the release's labels are soft; OFA's loss takes their argmax).
# Expect a weaker DeiT-T student than the release's until they are added.
# Schedule in MMEngine: the warm-up (LinearLR) and a cosine over all 300 epochs multiply, which
# gives the release's lr after the warm-up (within 2e-5 relative, eta_min's rounding) and at most
# 1 % below it during the warm-up (tested epoch by epoch).
# Validation: MMEngine's EMAHook validates and checkpoints the EMA weights only; the release
# validates the raw weights and the EMA weights separately (one best checkpoint each), and its
# EMA starts from the initialised student where MMEngine's copies the student before
# init_weights() (another random init; its weight in the EMA is below 1 % after 115k steps).
_base_ = './imagenet_cnn_student.py'

max_epochs = 300
warmup_epochs = 20
base_lr = 5e-4
warmup_lr = 5e-7
min_lr = 1e-6

train_dataloader = dict(batch_size=128)
val_dataloader = dict(
    batch_size=128,
    dataset=dict(transform=dict(type='TimmEvalTransform', size=224, crop_pct=0.9,
                                interpolation='bicubic')))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=base_lr, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.05),
    clip_grad=dict(max_norm=5.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs + 1),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         eta_min=min_lr),
]
auto_scale_lr = dict(base_batch_size=1024)

custom_hooks = [
    dict(type='SyncBuffersHook'),
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=4e-5,  # 1 - 0.99996
         update_buffers=True),
]
