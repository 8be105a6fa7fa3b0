# OFA-KD (Hao et al., NeurIPS 2023, arXiv 2310.19444), ResNet-50 -> DeiT-T on ImageNet-1K (a CNN
# teacher, a transformer student): the OFA loss (eps 1, tau 1: train.py's defaults) on the logits
# of a branch per student stage and on the student's own logits, all against the teacher's
# logits, weights 1. Branches as distillers/ofa.py builds them for a transformer student: the
# 14x14 patch grid merged once to 7x7 (stride 2) at the student's width 192 (not the teacher's
# 2048), then max(4 - stage, 1) transformer blocks with 4 heads (3/2/1/1), a linear head.
# kdzoo's transformer StageBranch embeds the patches with a strided conv instead of OFA's patch
# merging and pools the tokens (mean + LayerNorm) instead of reading a CLS token
# (docs/losses.md, StageBranch).
#
# Recipe: ./_base_/imagenet_vit_student.py (configs/imagenet/vit_mlp.yaml, 8 GPUs x 128) without
# its RandAugment, random erasing and mixup / cutmix (see there); the teacher: timm's
# resnet50.a1_in1k (./_base_/r50_to_deit-t_imagenet.py).
# Numbers to reproduce: the per-pair ImageNet-1K top-1 of OFA-KD's paper could not be read in the
# sources of this change (docs/losses.md, "Papers' setups"); none is quoted.
_base_ = ['./_base_/r50_to_deit-t_imagenet.py', './_base_/ofa.py']

distill_cfg = dict(
    losses={{_base_.ofa_stage_losses}},
    connectors={
        f'branch{i}': dict(type='StageBranch', kind='transformer', in_channels=192,
                           num_classes=1000, stride=2, embed_dim=192, depth=max(4 - i, 1),
                           num_heads=4)
        for i in (1, 2, 3, 4)})
