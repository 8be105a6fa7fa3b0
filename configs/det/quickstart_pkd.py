# Quick-start distillation: the ResNet-18 student of quickstart_retinanet_r18.py, same budget,
# distilled from the Swin teacher with PKD on the FPN levels and CWD on the classification maps.
# Train the teacher first:
#   kdzoo train kdzoo::det/quickstart_retinanet_swin_teacher.py \
#       --work-dir work_dirs/quickstart_det/teacher
_base_ = './quickstart_retinanet_r18.py'
distill_cfg = dict(
    teacher=dict(config='{{fileDirname}}/quickstart_retinanet_swin_teacher.py',
                 checkpoint='work_dirs/quickstart_det/teacher/iter_600.pth'),
    losses=[
        dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'), weight=6.0, name='pkd_fpn'),
        dict(student='cls_scores', teacher='cls_scores', loss=dict(type='CWDLoss'), weight=5.0,
             name='cwd_cls'),
    ],
)
