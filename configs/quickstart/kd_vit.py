# Quick-start teacher comparison, arm (b): the plain-ViT student of student_plain_vit.py, same
# budget, distilled with KD (tau 4) on the logits from the MobileViT teacher alone
# (teacher_mobilevit.py, a vision-transformer hybrid, like the ViT student a transformer). Identical
# to kd_cnn.py except for the teacher.
_base_ = './student_plain_vit.py'
distill_cfg = dict(
    teachers=dict(
        vit=dict(config='{{fileDirname}}/teacher_mobilevit.py',
                 checkpoint='work_dirs/quickstart/teacher_mobilevit/iter_600.pth')),
    losses=[
        dict(student='logits', teacher='vit:logits', loss=dict(type='KDLoss', tau=4.0),
             weight=1.0, name='kd_vit'),
    ],
)
setup_command = ('kdzoo quickstart && kdzoo train kdzoo::quickstart/teacher_mobilevit.py '
                 '--work-dir work_dirs/quickstart/teacher_mobilevit')
