# Quick-start teacher comparison, arm (c): the plain-ViT student of student_plain_vit.py, same
# budget, distilled with KD (tau 4) on the logits from both teachers at once: the ResNet
# (teacher.py, `cnn`) and the MobileViT (teacher_mobilevit.py, `vit`). One item per teacher and one
# on their ensemble (the mean of the two teachers' logits, equal weights); the item weights 0.25 +
# 0.25 + 0.5 sum to the weight 1 of the single-teacher arms kd_cnn.py and kd_vit.py, which are this
# config with one teacher.
_base_ = './student_plain_vit.py'
distill_cfg = dict(
    teachers=dict(
        cnn=dict(config='{{fileDirname}}/teacher.py',
                 checkpoint='work_dirs/quickstart/teacher/iter_600.pth'),
        vit=dict(config='{{fileDirname}}/teacher_mobilevit.py',
                 checkpoint='work_dirs/quickstart/teacher_mobilevit/iter_600.pth')),
    losses=[
        dict(student='logits', teacher='cnn:logits', loss=dict(type='KDLoss', tau=4.0),
             weight=0.25, name='kd_cnn'),
        dict(student='logits', teacher='vit:logits', loss=dict(type='KDLoss', tau=4.0),
             weight=0.25, name='kd_vit'),
        dict(student='logits', teacher=['cnn:logits', 'vit:logits'], teacher_weights=[1.0, 1.0],
             loss=dict(type='KDLoss', tau=4.0), weight=0.5, name='kd_ensemble'),
    ],
)
setup_command = ('kdzoo quickstart && kdzoo train kdzoo::quickstart/teacher_mobilevit.py '
                 '--work-dir work_dirs/quickstart/teacher_mobilevit')
