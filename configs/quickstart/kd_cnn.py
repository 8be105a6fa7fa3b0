# Quick-start teacher comparison, arm (a): the plain-ViT student of student_plain_vit.py, same
# budget, distilled with KD (Hinton et al. 2015, tau 4) on the logits from the ResNet teacher alone
# (teacher.py, a CNN). kd_vit.py (the MobileViT teacher alone) and kd_two_teachers.py (both) are
# this config with other teachers: same student, loss, total distillation weight (1), schedule and
# seed. The teachers first: setup_command below (kdzoo quickstart trains teacher.py).
_base_ = './student_plain_vit.py'
distill_cfg = dict(
    teachers=dict(
        cnn=dict(config='{{fileDirname}}/teacher.py',
                 checkpoint='work_dirs/quickstart/teacher/iter_600.pth')),
    losses=[
        dict(student='logits', teacher='cnn:logits', loss=dict(type='KDLoss', tau=4.0),
             weight=1.0, name='kd_cnn'),
    ],
)
setup_command = ('kdzoo quickstart && kdzoo train kdzoo::quickstart/teacher_mobilevit.py '
                 '--work-dir work_dirs/quickstart/teacher_mobilevit')
