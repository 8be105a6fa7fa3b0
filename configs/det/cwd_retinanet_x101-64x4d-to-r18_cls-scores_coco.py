# CWD (Shu et al., ICCV 2021) on the RetinaNet heads' per-level classification maps
# ('cls_scores': 5 levels of 9 anchors x 80 classes = 720 channels), tau=1, weight 5 (mmrazor's
# CWD detection recipe on dense-head scores).
_base_ = './_base_/retinanet_x101-64x4d_to_r18.py'
distill_cfg = dict(losses=[
    dict(student='cls_scores', teacher='cls_scores', loss=dict(type='CWDLoss', tau=1.0),
         weight=5.0, name='cwd_cls'),
])
