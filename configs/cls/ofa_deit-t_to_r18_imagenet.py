# OFA-KD (Hao et al., NeurIPS 2023, arXiv 2310.19444), DeiT-T -> ResNet-18 on ImageNet-1K: the
# release's README command (github.com/Hao840/OFAKD, README.md, "Training": --model resnet18
# --teacher deit_tiny_patch16_224 --distiller ofa --ofa-eps 1.5, configs/imagenet/cnn.yaml, 8 GPUs).
# The OFA loss (eps 1.5, tau 1) on the logits of a branch per student stage and on the student's
# own logits, all against the teacher's logits, weights 1. Branches as distillers/ofa.py builds
# them for a CNN student (StageBranch): strides 8/4/2/1 bring the 56/28/14/7 stages to 7x7,
# embed_dim = max(student width 512, teacher width 192) = 512, the stage-4 1x1 conv with a bias.
#
# Recipe: ./_base_/imagenet_cnn_student.py; the teacher: timm's deit_tiny_patch16_224.fb_in1k, the
# checkpoint the README links (./_base_/deit-t_to_r18_imagenet.py).
# Numbers to reproduce: the per-pair ImageNet-1K top-1 of OFA-KD's paper could not be read in the
# sources of this change (docs/losses.md, "Papers' setups"); none is quoted.
_base_ = './_base_/deit-t_to_r18_imagenet.py'

distill_cfg = dict(
    losses=[
        dict(student='logits', teacher='logits', loss=dict(type='OFALoss', eps=1.5),
             name='ofa_logits'),
    ] + [
        dict(student=f'stage{i}', teacher='logits', loss=dict(type='OFALoss', eps=1.5),
             connector=f'branch{i}', name=f'ofa_stage{i}') for i in (1, 2, 3, 4)
    ],
    connectors={
        f'branch{i}': dict(type='StageBranch', in_channels=c, num_classes=1000, stride=s,
                           embed_dim=512)
        for i, c, s in ((1, 64, 8), (2, 128, 4), (3, 256, 2), (4, 512, 1))})
