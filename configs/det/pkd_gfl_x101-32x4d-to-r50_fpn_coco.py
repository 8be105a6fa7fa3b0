# PKD (Cao et al., NeurIPS 2022) on the FPN levels: a GFL ResNeXt-101-32x4d teacher (multi-scale 2x,
# COCO box AP 45.9) -> a GFL ResNet-50 student (1x, 40.2 alone). 5 levels of 256 channels at
# strides 8..128; weight 6 (the PKD paper's / mmrazor's value for dense detectors).
_base_ = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'
distill_cfg = dict(
    teacher=dict(
        config='mmdet::gfl/gfl_x101-32x4d_fpn_ms-2x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/gfl/'
                   'gfl_x101_32x4d_fpn_mstrain_2x_coco/'
                   'gfl_x101_32x4d_fpn_mstrain_2x_coco_20200630_102002-50c1ffdb.pth'),
    losses=[
        dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'), weight=6.0,
             name='pkd_fpn'),
    ],
)
