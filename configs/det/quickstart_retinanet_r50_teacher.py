# Det quick-start second teacher, a CNN (another family than the Swin of
# quickstart_retinanet_swin_teacher.py): RetinaNet ResNet-50, from scratch, with the quick-start
# 64-channel FPN (5 levels at strides 8..128, like the Swin teacher's and the student's, so the
# two teachers' levels average into an ensemble), for quickstart_two_teachers.py:
#   kdzoo train kdzoo::det/quickstart_retinanet_r50_teacher.py \
#       --work-dir work_dirs/quickstart_det/teacher_r50
_base_ = './_base_/quickstart_retinanet.py'
model = dict(backbone=dict(frozen_stages=-1, norm_eval=False, init_cfg=None))
