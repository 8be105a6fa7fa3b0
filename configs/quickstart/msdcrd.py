# Quick-start: the student of student.py, same budget, distilled from the quick-start teacher
# with MSDCRD on the dense logits (the classifier applied at every location of the last map).
# kdzoo quickstart sets the teacher checkpoint to the teacher run it just trained.
_base_ = './student.py'
distill_cfg = dict(
    teacher=dict(config='{{fileDirname}}/teacher.py',
                 checkpoint='work_dirs/quickstart/teacher/iter_600.pth'),
    losses=[
        dict(student='dense_logits', teacher='dense_logits', loss=dict(type='MSDCRDLoss')),
    ],
)
