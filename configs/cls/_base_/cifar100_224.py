# CIFAR-100 at 224 input: the data and schedule of the heterogeneous pairs in configs/cls/.
#
# This approximates OFA-KD's CIFAR-100 setting (github.com/Hao840/OFAKD, configs/cifar/cnn.yaml:
# 300 epochs, batch 128 per GPU, SGD lr 0.05, weight decay 2e-3, cosine to 1e-3 after 3 warm-up
# epochs, label smoothing 0.1; its CIFAR-100 commands run on 2 GPUs). It is NOT a verified copy:
# check it against the OFA-KD / MLDR-KD releases (their augmentation at 224 in particular, here
# pad-and-crop + flip at 32 px, then a bilinear resize to 224 inside each model) before comparing
# numbers with the papers' tables.
#
# Data: the python-pickle release of CIFAR-100 (cifar-100-python.tar.gz from
# https://www.cs.toronto.edu/~kriz/cifar.html) unpacked so that these files exist:
#   data/cifar100/cifar-100-python/{train,test,meta}
default_scope = 'kdzoo'
custom_imports = dict(imports=['kdzoo.adapters.cls'], allow_failed_imports=False)

data_root = 'data/cifar100'
max_epochs = 300
warmup_epochs = 3

train_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True,
    dataset=dict(type='Cifar100Cls', root=data_root, split='train', augment=True),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
val_dataloader = dict(
    batch_size=256, num_workers=8, persistent_workers=True,
    dataset=dict(type='Cifar100Cls', root=data_root, split='test'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=2e-3, nesterov=False))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup_epochs, end=max_epochs,
         T_max=max_epochs - warmup_epochs, eta_min=1e-3, convert_to_iter_based=True),
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2,
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
