# CWD baseline (Shu et al., ICCV 2021): channel-wise distillation of the logit maps, tau=1 and
# loss weight 3 as in CWD's segmentation setting (mmrazor's cwd_logits_pspnet config).
# UPerNet Swin-T (ADE20K) -> PSPNet ResNet-18-d8.
_base_ = './_base_/swin-t_to_r18_ade20k.py'
distill_cfg = dict(losses=[
    dict(student='logits', teacher='logits', loss=dict(type='CWDLoss', tau=1.0), weight=3.0),
])
