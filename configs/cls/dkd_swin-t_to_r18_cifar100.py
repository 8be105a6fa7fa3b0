# DKD baseline (Zhao et al., CVPR 2022) on the logits, mdistiller's CIFAR-100 setting: alpha 1,
# beta 8, tau 4, the weight ramped up over the first 20 epochs (20 x 391 iterations at batch 128
# on one GPU; halve warmup_iters for 2 GPUs).
_base_ = './_base_/swin-t_to_r18.py'

distill_cfg = dict(losses=[
    dict(student='logits', teacher='logits', name='dkd', warmup_iters=7820,
         loss=dict(type='DKDLoss', alpha=1.0, beta=8.0, tau=4.0)),
])
