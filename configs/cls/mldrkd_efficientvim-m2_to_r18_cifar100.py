# MLDR-KD (arXiv 2502.06189), EfficientViM-M2 -> ResNet-18 on CIFAR-100: the paper's Mamba-teacher
# setting with a state-space teacher that runs without CUDA kernels. The items of
# ./_base_/mldrkd.py; ResNet-18's branches as the release builds them (github.com/Ethan-Yang02/
# MLDR-KD, mldr_kd/msdf.py): strides 8/4/2/1 bring the 56/28/14/7 maps to 7x7, no bias on the
# stage-4 1x1 conv; embed_dim = max(student width 512, teacher final map width 512) = 512 (the
# release takes the teacher's `num_features`, which for timm's EfficientViM is the 1408-wide
# concatenation its fused head reads; the final map's width is the analogue of the other pairs).
#
# Numbers: the paper's Mamba teacher is Vision Mamba Vim-S (the release's
# configs/cifar100/resnet18_vim_small.yaml: teacher 87.89, ResNet-18 alone 74.01, + MLDR-KD 80.23),
# which needs the mamba-ssm CUDA kernels. EfficientViM-M2 stands in for it: no published number for
# this pair; compare with ResNet-18 alone (74.01 in the release's recipe) and with the other pairs.
_base_ = ['./_base_/efficientvim-m2_to_r18.py', './_base_/mldrkd.py']

distill_cfg = dict(
    losses={{_base_.mldrkd_losses}},
    connectors=dict(msdf=dict(type='MSDFusion', num_classes=100, branches=[
        dict(in_channels=c, stride=s, embed_dim=512, bias=False)
        for c, s in ((64, 8), (128, 4), (256, 2), (512, 1))])))
