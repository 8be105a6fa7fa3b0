# CWD (Shu et al., ICCV 2021) on the FPN levels, across families and detector types: a Mask R-CNN
# Swin-T teacher (COCO box AP 42.7) -> a Faster R-CNN ResNet-50 student (37.4 alone).
# Both FPNs give 5 levels of 256 channels at strides 4..64. tau=1, weight 10 (mmrazor's CWD FPN
# recipe). The teacher's mask head is built but never run (only its backbone and neck are).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
distill_cfg = dict(
    teacher=dict(
        config='mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/swin/'
                   'mask_rcnn_swin-t-p4-w7_fpn_1x_coco/'
                   'mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth'),
    losses=[
        dict(student='neck', teacher='neck', loss=dict(type='CWDLoss', tau=1.0), weight=10.0,
             name='cwd_fpn'),
    ],
)
