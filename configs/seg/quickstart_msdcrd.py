# Seg quick-start distillation: quickstart_student.py distilled from the quick-start Swin teacher
# (train it first) with MSDCRD on the logit maps (teacher 1/4, student 1/8: aligned by the loss):
#   kdzoo train kdzoo::seg/quickstart_teacher.py
#   kdzoo train kdzoo::seg/quickstart_msdcrd.py
_base_ = './quickstart_student.py'
distill_cfg = dict(
    teacher=dict(config='{{fileDirname}}/quickstart_teacher.py',
                 checkpoint='work_dirs/quickstart_teacher/iter_1000.pth'),
    losses=[dict(student='logits', teacher='logits', loss=dict(type='MSDCRDLoss'))])
