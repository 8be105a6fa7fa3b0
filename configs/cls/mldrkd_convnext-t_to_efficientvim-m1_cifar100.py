# MLDR-KD (arXiv 2502.06189), ConvNeXt-T -> EfficientViM-M1 on CIFAR-100: a CNN teacher and a
# Mamba-family (state-space) student. The three-stage items of ./_base_/mldrkd.py
# (mldrkd_losses_3stages): one branch per EfficientViM stage, CNN branches as the release's
# (github.com/Ethan-Yang02/MLDR-KD, mldr_kd/msdf.py, which has ResNet students only): strides
# 4/2/1 bring the 14/7/4 maps to 4x4 (each SepConv halves with padding: 14 -> 7 -> 4), no bias on
# the stage-3 1x1 conv; embed_dim = max(student width 320, teacher width 768) = 768.
#
# Numbers: the release has no EfficientViM student, so there is no published number for this
# pair; train EfficientViM-M1 alone with this recipe (configs/cls/_base_/convnext-t_to_
# efficientvim-m1.py's `model` under ./_base_/cifar100_224.py) as the baseline.
_base_ = ['./_base_/convnext-t_to_efficientvim-m1.py', './_base_/mldrkd.py']

distill_cfg = dict(
    losses={{_base_.mldrkd_losses_3stages}},
    connectors=dict(msdf=dict(type='MSDFusion', num_classes=100, branches=[
        dict(in_channels=c, stride=s, embed_dim=768, bias=False)
        for c, s in ((128, 4), (192, 2), (320, 1))])))
