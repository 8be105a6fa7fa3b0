# MLDR-KD's DFRA loss (arXiv 2502.06189) on pixel logits: UPerNet Swin-T (ADE20K) -> PSPNet
# ResNet-18-d8. Every location of the (aligned) logit maps is a sample; DFRA draws at most
# max_samples of them per step (the same ones for both models).
_base_ = './_base_/swin-t_to_r18_ade20k.py'
distill_cfg = dict(losses=[
    dict(student='logits', teacher='logits',
         loss=dict(type='DFRALoss', tau=1.0, alpha=2.0, max_samples=4096)),
])
