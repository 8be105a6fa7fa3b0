# Seg quick-start base: the generated shapes set (64 px, 10 classes incl. background) in mmseg's
# img_dir/ann_dir layout, written by
#   kdzoo make-data seg data/seg_shapes --train 400 --val 100
# and a CPU-sized iteration schedule.
_base_ = 'mmseg::_base_/default_runtime.py'
custom_imports = dict(imports=['kdzoo.adapters.mmseg'], allow_failed_imports=False)

data_root = 'data/seg_shapes'
crop_size = (64, 64)
max_iters = 1000

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]


def split(name, pipeline):
    return dict(type='ShapesSegDataset', data_root=data_root, pipeline=pipeline,
                data_prefix=dict(img_path=f'img_dir/{name}', seg_map_path=f'ann_dir/{name}'))


train_dataloader = dict(batch_size=16, num_workers=2, persistent_workers=True,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=split('train', train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=2, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=split('val', test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01))
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters,
                        by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
# What makes the data and the teacher checkpoint of quickstart_msdcrd.py (printed by
# kdzoo compare and other commands when they are missing).
setup_command = ('kdzoo make-data seg data/seg_shapes --train 400 --val 100 && '
                 'kdzoo train kdzoo::seg/quickstart_teacher.py')
