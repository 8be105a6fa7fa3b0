# Seg quick-start distillation from two teachers of different families (distill_cfg.teachers,
# docs/distill_cfg.md): the PSPNet ResNet-18 of quickstart_student.py distilled from the Swin
# UPerNet of quickstart_teacher.py (`swin`) and the ResNet-50 UPerNet of quickstart_teacher_r50.py
# (`cnn`) with CWD (tau 1) on the logit maps (teachers 1/4, student 1/8: aligned by the loss): one
# item per teacher (weight 0.75 each) and one on their ensemble, the mean of the two teachers'
# logit maps (weight 1.5), 3 in all as CWD's segmentation setting (cwd_swin_to_r18.py).
# Train both teachers first:
#   kdzoo train kdzoo::seg/quickstart_teacher.py
#   kdzoo train kdzoo::seg/quickstart_teacher_r50.py
#   kdzoo train kdzoo::seg/quickstart_two_teachers.py
_base_ = './quickstart_student.py'
distill_cfg = dict(
    teachers=dict(
        swin=dict(config='{{fileDirname}}/quickstart_teacher.py',
                  checkpoint='work_dirs/quickstart_teacher/iter_1000.pth'),
        cnn=dict(config='{{fileDirname}}/quickstart_teacher_r50.py',
                 checkpoint='work_dirs/quickstart_teacher_r50/iter_1000.pth')),
    losses=[
        dict(student='logits', teacher='swin:logits', loss=dict(type='CWDLoss', tau=1.0),
             weight=0.75, name='cwd_swin'),
        dict(student='logits', teacher='cnn:logits', loss=dict(type='CWDLoss', tau=1.0),
             weight=0.75, name='cwd_cnn'),
        dict(student='logits', teacher=['swin:logits', 'cnn:logits'],
             loss=dict(type='CWDLoss', tau=1.0), weight=1.5, name='cwd_ensemble'),
    ])
setup_command = ('kdzoo make-data seg data/seg_shapes --train 400 --val 100 && '
                 'kdzoo train kdzoo::seg/quickstart_teacher.py && '
                 'kdzoo train kdzoo::seg/quickstart_teacher_r50.py')
