# MSDCRD (arXiv 2502.05835, kdzoo's reconstruction) on the 5 FPN levels, level by level.
# On feature maps the window categorization is a heuristic, so it is off (w_comp=1).
_base_ = './_base_/retinanet_x101-64x4d_to_r18.py'
distill_cfg = dict(losses=[
    dict(student='neck', teacher='neck', loss=dict(type='MSDCRDLoss', tau=0.1, w_comp=1.0),
         weight=1.0, name='msdcrd_fpn'),
])
