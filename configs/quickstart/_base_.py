# Quick-start base: the generated shapes set (kdzoo quickstart writes it), CPU-sized schedule.
# data/quickstart/{train,val}/<pattern>_<shape>/*.png  (ImageFolder layout)
default_scope = 'kdzoo'
custom_imports = dict(imports=['kdzoo.adapters.cls'], allow_failed_imports=False)

data_root = 'data/quickstart'
max_iters = 500  # the student runs of kdzoo quickstart (its teacher: teacher.py, 600)
batch_size = 64

train_dataloader = dict(
    batch_size=batch_size, num_workers=0,
    dataset=dict(type='ImageFolderCls', root=data_root + '/train', augment=True, cache=True),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'))
val_dataloader = dict(
    batch_size=128, num_workers=0,
    dataset=dict(type='ImageFolderCls', root=data_root + '/val', cache=True),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy')
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
lr = 2e-3
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=lr, weight_decay=0.05))
# one cycle: 10 % linear warm-up to lr, then cosine annealing (ViTs need the warm-up)
param_scheduler = [dict(type='OneCycleLR', eta_max=lr, total_steps=max_iters, pct_start=0.1,
                        by_epoch=False)]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='gloo'))
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False
# What makes the data and the teacher checkpoint these configs read (kdzoo compare and other
# tools print it when they are missing).
setup_command = 'kdzoo quickstart'
