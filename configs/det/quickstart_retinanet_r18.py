# Quick-start student trained alone: RetinaNet ResNet-18 (from scratch) on the generated set.
_base_ = './_base_/quickstart_retinanet.py'
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]))
