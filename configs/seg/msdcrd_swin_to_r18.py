# MSDCRD (arXiv 2502.05835): UPerNet Swin-T (ADE20K) -> PSPNet ResNet-18-d8, contrastive
# distillation between multi-scale windows of the decode heads' logit maps (the teacher's 1/4
# map is pooled to the student's 1/8 grid by the loss). Parameter-free: nothing but the student
# is trained.
_base_ = './_base_/swin-t_to_r18_ade20k.py'
distill_cfg = dict(losses=[
    dict(student='logits', teacher='logits', loss=dict(type='MSDCRDLoss', tau=0.1), weight=1.0),
])
