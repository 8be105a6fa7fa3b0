# DIST baseline (Huang et al., NeurIPS 2022): inter- and intra-class Pearson correlation of the
# softmax rows and columns. beta = gamma = tau = 1: DIST's ImageNet setting and the defaults of
# OFA-KD's release, whose heterogeneous tables these configs approximate.
_base_ = './_base_/swin-t_to_r18.py'

distill_cfg = dict(losses=[
    dict(student='logits', teacher='logits', loss=dict(type='DISTLoss', beta=1.0, gamma=1.0,
                                                       tau=1.0), name='dist'),
])
