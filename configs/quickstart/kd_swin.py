# Quick-start teacher comparison, arm (b): the student of student.py, same budget, distilled with
# KD (tau 4) on the logits from the Swin teacher alone (teacher_swin.py, a transformer; the
# student is a ViT, so this pair is the homogeneous-family one). Identical to kd_cnn.py except for
# the teacher.
_base_ = './student.py'
distill_cfg = dict(
    teachers=dict(
        swin=dict(config='{{fileDirname}}/teacher_swin.py',
                  checkpoint='work_dirs/quickstart/teacher_swin/iter_600.pth')),
    losses=[
        dict(student='logits', teacher='swin:logits', loss=dict(type='KDLoss', tau=4.0),
             weight=1.0, name='kd_swin'),
    ],
)
setup_command = ('python tools/quickstart.py && python tools/train.py '
                 'configs/quickstart/teacher_swin.py --work-dir work_dirs/quickstart/teacher_swin')
