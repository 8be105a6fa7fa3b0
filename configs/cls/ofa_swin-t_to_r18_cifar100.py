# OFA-KD (Hao et al., NeurIPS 2023; github.com/Hao840/OFAKD distillers/ofa.py): the OFA loss on the
# logits of a branch per student stage and on the student's own logits, all against the
# teacher's logits, weights 1, eps 1.0 and tau 1 (the defaults of OFA-KD's train.py, --ofa-eps 1,
# --ofa-temperature 1; its README gives an ImageNet command only, none for CIFAR-100).
# Branches (StageBranch, OFA's projector): strides 8/4/2/1 bring the 56/28/14/7 stages to 7x7,
# embed_dim = max(student width 512, teacher width 768); the stage-4 1x1 conv has a bias, as OFA's
# (StageBranch's default bias=True). The labels reach the loss as `target`.
_base_ = ['./_base_/swin-t_to_r18.py', './_base_/ofa.py']

distill_cfg = dict(
    losses={{_base_.ofa_stage_losses}},
    connectors=dict(
        branch1=dict(type='StageBranch', in_channels=64, num_classes=100, stride=8, embed_dim=768),
        branch2=dict(type='StageBranch', in_channels=128, num_classes=100, stride=4, embed_dim=768),
        branch3=dict(type='StageBranch', in_channels=256, num_classes=100, stride=2, embed_dim=768),
        branch4=dict(type='StageBranch', in_channels=512, num_classes=100, stride=1, embed_dim=768),
    ))
