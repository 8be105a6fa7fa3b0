# LFCC (arXiv 2405.18524; a reconstruction without released code, docs/losses.md), ResNet-50 ->
# DeiT-T on ImageNet-1K: each DeiT-T stage (blocks 3/6/9/12, 192 channels at 14x14) through a 1x1
# Projector (+BN) to the ResNet-50 stage's width (192 -> 256/512/1024/2048) and compared with it
# (the grids are pooled to the smaller one: 14/14/14/7); negatives from every GPU
# (gather_distributed). Weights 1: our choice, untuned.
#
# Recipe: OFA-KD's for transformer students (./_base_/imagenet_vit_student.py: its
# configs/imagenet/vit_mlp.yaml, 8 GPUs x 128) without its RandAugment, random erasing and
# mixup / cutmix (see there); LFCC's own ImageNet schedule could not be read in the sources of
# this change. The teacher: timm's resnet50.a1_in1k.
# Numbers to reproduce: LFCC's ImageNet-1K table could not be read here; none is quoted
# (docs/losses.md, "Papers' setups").
_base_ = ['./_base_/r50_to_deit-t_imagenet.py', './_base_/lfcc.py']

distill_cfg = dict(
    losses={{_base_.lfcc_stage_losses}},
    connectors={
        f'proj{i}': dict(type='Projector', in_channels=192, out_channels=t)
        for i, t in ((1, 256), (2, 512), (3, 1024), (4, 2048))})
