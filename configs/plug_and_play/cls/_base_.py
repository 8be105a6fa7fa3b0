# Plug-and-play matrix, classification (tools/plug_and_play.py): the generated shapes set, 24
# classes (6 shapes x 4 fill patterns, random colours, pose, background, noise and distractor
# lines), 64 px, written by the tool to <out>/tmp/data/cls/{train,val}; every model sees 64 px.
# The tool sets the data roots, the iterations (the schedule below is rescaled to them), the
# workers and the seed; these configs also train on their own with tools/train.py once the set
# exists at data_root.
default_scope = 'kdzoo'
custom_imports = dict(imports=['kdzoo.adapters.cls'], allow_failed_imports=False)

data_root = 'results/tmp/data/cls'
num_classes = 24
max_iters = 1000
warmup_iters = 50

train_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True,
    dataset=dict(type='ImageFolderCls', root=data_root + '/train', augment=True),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
val_dataloader = dict(
    batch_size=256, num_workers=8, persistent_workers=True,
    dataset=dict(type='ImageFolderCls', root=data_root + '/val'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy')
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters,
         T_max=max_iters - warmup_iters, eta_min=1e-5),
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False
