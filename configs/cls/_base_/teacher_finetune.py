# Fine-tuning an ImageNet-1k teacher on CIFAR-100 at 224 (configs/cls/teachers/).
#
# Our choice, not taken from a release (OFA-KD and MLDR-KD publish their fine-tuned teachers, not
# this schedule): AdamW, lr 1e-4, weight decay 0.05, 50 epochs, cosine after 2 warm-up epochs,
# gradient clipping at 5. Each teacher config sets `model` with pretrained=True: timm's published
# ImageNet-1k weights, loaded by timm (the 1000-class head replaced by a random 100-class one).
# Data and augmentation: ./cifar100_224.py's (MLDR-KD's released recipe).
_base_ = './cifar100_224.py'

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=2, end=max_epochs, T_max=max_epochs - 2,
         eta_min=1e-6, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=5))
