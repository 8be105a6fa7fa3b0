# MLDR-KD (arXiv 2502.06189), Mixer-B/16 -> ResNet-18 on CIFAR-100: the items of ./_base_/mldrkd.py
# with this pair's stage branches, built as the release builds them (github.com/Ethan-Yang02/MLDR-
# KD, configs/cifar100/resnet18_mixer_b16.yaml, mldr_kd/msdf.py): strides 8/4/2/1 bring ResNet-18's
# 56/28/14/7 maps to 7x7; embed_dim = max(student width 512, teacher width 768) = 768 for every
# branch (the shared gate); no bias on the stage-4 1x1 conv (bias=False; OFA's has one); gate hidden
# width 4K = 400.
#
# Numbers to reproduce (CIFAR-100 top-1 %, the release's YAML = the paper's Table 2):
#   teacher Mixer-B/16 87.29  |  ResNet-18 alone 74.01  |  ResNet-18 + MLDR-KD 80.79
# Recipe: ./_base_/cifar100_224.py (the release's train.py and YAML); what still differs from the
# release: docs/losses.md, "Papers' setups".
_base_ = ['./_base_/mixer-b16_to_r18.py', './_base_/mldrkd.py']

distill_cfg = dict(
    losses={{_base_.mldrkd_losses}},
    connectors=dict(msdf=dict(type='MSDFusion', num_classes=100, branches=[
        dict(in_channels=c, stride=s, embed_dim=768, bias=False)
        for c, s in ((64, 8), (128, 4), (256, 2), (512, 1))])))
