# OFA-KD (Hao et al., NeurIPS 2023, arXiv 2310.19444), Swin-T -> ResNet-18 on ImageNet-1K: the OFA
# loss on the logits of a branch per student stage and on the student's own logits, all against
# the teacher's logits, weights 1, tau 1, eps 1 (train.py's defaults, --ofa-eps 1
# --ofa-temperature 1; the release names an eps only for DeiT-T -> ResNet-18, README.md: 1.5).
# Branches as distillers/ofa.py builds them for a CNN student (StageBranch): strides 8/4/2/1
# bring the 56/28/14/7 stages to 7x7 through SepConvs, embed_dim = max(student width 512,
# teacher width 768) = 768, the stage-4 1x1 conv with a bias. The labels reach the loss as
# `target`.
#
# Recipe: ./_base_/imagenet_cnn_student.py (configs/imagenet/cnn.yaml, 8 GPUs x 64); the teacher:
# timm's swin_tiny_patch4_window7_224.ms_in1k (./_base_/swin-t_to_r18_imagenet.py).
# Numbers to reproduce: the per-pair ImageNet-1K top-1 of OFA-KD's paper could not be read in the
# sources of this change (docs/losses.md, "Papers' setups"); none is quoted.
_base_ = ['./_base_/swin-t_to_r18_imagenet.py', './_base_/ofa.py']

distill_cfg = dict(
    losses={{_base_.ofa_stage_losses}},
    connectors={
        f'branch{i}': dict(type='StageBranch', in_channels=c, num_classes=1000, stride=s,
                           embed_dim=768)
        for i, c, s in ((1, 64, 8), (2, 128, 4), (3, 256, 2), (4, 512, 1))})
