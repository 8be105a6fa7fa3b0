# LFCC (arXiv 2405.18524, kdzoo's reconstruction) on the 5 FPN levels, level by level: low-pass
# (average pooling to 1x1, 2x2, 4x4) and a sample-level contrastive loss; both sides 256 channels.
_base_ = './_base_/retinanet_x101-64x4d_to_r18.py'
distill_cfg = dict(losses=[
    dict(student='neck', teacher='neck', loss=dict(type='LFCCLoss', tau=0.1), weight=1.0,
         name='lfcc_fpn'),
])
