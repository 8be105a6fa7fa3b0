# KD baseline (Hinton et al. 2015) on pixel logits: every location of the aligned logit maps is
# a sample. UPerNet Swin-T (ADE20K) -> PSPNet ResNet-18-d8.
_base_ = './_base_/swin-t_to_r18_ade20k.py'
distill_cfg = dict(losses=[
    dict(student='logits', teacher='logits', loss=dict(type='KDLoss', tau=4.0), weight=1.0),
])
