# LFCC (arXiv 2405.18524; a reconstruction without released code, docs/losses.md), DeiT-T ->
# ResNet-18 on ImageNet-1K: each ResNet-18 stage through a 1x1 Projector (+BN) to DeiT-T's width
# 192 (64/128/256/512 -> 192) and compared with the DeiT-T stage (blocks 3/6/9/12, 14x14; the
# grids are pooled to the smaller one: 14/14/14/7) (the items of ./_base_/lfcc.py).
# Weights 1: our choice, untuned.
#
# Recipe: OFA-KD's, which the LFCC paper compares with (./_base_/imagenet_cnn_student.py: its
# configs/imagenet/cnn.yaml, 8 GPUs x 64); LFCC's own ImageNet schedule could not be read in the
# sources of this change. The teacher: timm's deit_tiny_patch16_224.fb_in1k.
# Numbers to reproduce: LFCC's ImageNet-1K table could not be read here; none is quoted
# (docs/losses.md, "Papers' setups").
_base_ = ['./_base_/deit-t_to_r18_imagenet.py', './_base_/lfcc.py']

distill_cfg = dict(
    losses={{_base_.lfcc_stage_losses}},
    connectors={
        f'proj{i}': dict(type='Projector', in_channels=c, out_channels=192)
        for i, c in ((1, 64), (2, 128), (3, 256), (4, 512))})
