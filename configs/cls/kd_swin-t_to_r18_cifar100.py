# KD baseline (Hinton et al. 2015) on the logits. tau=1: the default of OFA-KD's release
# (--kd-temperature 1), whose tables these configs approximate; the usual CIFAR choice is 4.
_base_ = './_base_/swin-t_to_r18.py'

distill_cfg = dict(losses=[
    dict(student='logits', teacher='logits', loss=dict(type='KDLoss', tau=1.0), name='kd'),
])
