# Det quick-start distillation from two teachers of different families (distill_cfg.teachers,
# docs/distill_cfg.md): the RetinaNet ResNet-18 of quickstart_retinanet_r18.py distilled from the
# Swin RetinaNet of quickstart_retinanet_swin_teacher.py (`swin`) and the ResNet-50 RetinaNet of
# quickstart_retinanet_r50_teacher.py (`cnn`) with quickstart_pkd.py's items (PKD on the FPN
# levels, weight 6; CWD on the classification maps, weight 5), each given once per teacher (a
# quarter of the weight each) and once on the ensemble, the mean of the two teachers' levels and
# maps (half of it): each loss weighs as much in all as in quickstart_pkd.py.
# Train both teachers first:
#   kdzoo train kdzoo::det/quickstart_retinanet_swin_teacher.py \
#       --work-dir work_dirs/quickstart_det/teacher
#   kdzoo train kdzoo::det/quickstart_retinanet_r50_teacher.py \
#       --work-dir work_dirs/quickstart_det/teacher_r50
_base_ = './quickstart_retinanet_r18.py'
distill_cfg = dict(
    teachers=dict(
        swin=dict(config='{{fileDirname}}/quickstart_retinanet_swin_teacher.py',
                  checkpoint='work_dirs/quickstart_det/teacher/iter_600.pth'),
        cnn=dict(config='{{fileDirname}}/quickstart_retinanet_r50_teacher.py',
                 checkpoint='work_dirs/quickstart_det/teacher_r50/iter_600.pth')),
    losses=[
        dict(student='neck', teacher='swin:neck', loss=dict(type='PKDLoss'), weight=1.5,
             name='pkd_fpn_swin'),
        dict(student='neck', teacher='cnn:neck', loss=dict(type='PKDLoss'), weight=1.5,
             name='pkd_fpn_cnn'),
        dict(student='neck', teacher=['swin:neck', 'cnn:neck'], loss=dict(type='PKDLoss'),
             weight=3.0, name='pkd_fpn_ensemble'),
        dict(student='cls_scores', teacher='swin:cls_scores', loss=dict(type='CWDLoss'),
             weight=1.25, name='cwd_cls_swin'),
        dict(student='cls_scores', teacher='cnn:cls_scores', loss=dict(type='CWDLoss'),
             weight=1.25, name='cwd_cls_cnn'),
        dict(student='cls_scores', teacher=['swin:cls_scores', 'cnn:cls_scores'],
             loss=dict(type='CWDLoss'), weight=2.5, name='cwd_cls_ensemble'),
    ],
)
setup_command = ('kdzoo make-data det data/quickstart_det --train 400 --val 100 && '
                 'kdzoo train kdzoo::det/quickstart_retinanet_swin_teacher.py '
                 '--work-dir work_dirs/quickstart_det/teacher && '
                 'kdzoo train kdzoo::det/quickstart_retinanet_r50_teacher.py '
                 '--work-dir work_dirs/quickstart_det/teacher_r50')
