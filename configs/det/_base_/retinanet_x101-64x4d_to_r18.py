# RetinaNet ResNeXt-101-64x4d teacher (COCO box AP 41.0) -> RetinaNet ResNet-18 student
# (31.7 alone), COCO 1x schedule of the stock student config. Children add distill_cfg.losses.
# Both FPNs give 5 levels of 256 channels at strides 8..128, paired level by level.
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
distill_cfg = dict(
    teacher=dict(
        config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
                   'retinanet_x101_64x4d_fpn_1x_coco/'
                   'retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth'),
)
