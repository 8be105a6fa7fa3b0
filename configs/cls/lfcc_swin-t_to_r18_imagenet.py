# LFCC (arXiv 2405.18524; a reconstruction without released code, docs/losses.md), Swin-T ->
# ResNet-18 on ImageNet-1K, the items of ./lfcc_swin-t_to_r18_cifar100.py: each ResNet-18 stage
# through a 1x1 Projector (+BN) to the Swin-T stage's width (64/128/256/512 -> 96/192/384/768,
# both at 56/28/14/7) and compared with it (the items of ./_base_/lfcc.py).
# Weights 1: our choice, untuned.
#
# Recipe: OFA-KD's, which the LFCC paper compares with (./_base_/imagenet_cnn_student.py: its
# configs/imagenet/cnn.yaml, 8 GPUs x 64); LFCC's own ImageNet schedule could not be read in the
# sources of this change. The teacher: timm's swin_tiny_patch4_window7_224.ms_in1k.
# Numbers to reproduce: LFCC's ImageNet-1K table could not be read here; none is quoted
# (docs/losses.md, "Papers' setups").
_base_ = ['./_base_/swin-t_to_r18_imagenet.py', './_base_/lfcc.py']

distill_cfg = dict(
    losses={{_base_.lfcc_stage_losses}},
    connectors={
        f'proj{i}': dict(type='Projector', in_channels=c, out_channels=t)
        for i, c, t in ((1, 64, 96), (2, 128, 192), (3, 256, 384), (4, 512, 768))})
