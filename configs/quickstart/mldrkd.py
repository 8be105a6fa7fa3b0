# Quick-start: the student of student.py distilled with MLDR-KD (arXiv 2502.06189), with the items
# of configs/cls/_base_/mldrkd.py: DFRA on the student's logits, on each stage branch's logits and
# on their MSDF fusion, each against the teacher's logits. The ViT's four stages are 4x4 maps of
# width 128; each branch is a 1x1 conv to embed_dim = max(student width 128, teacher width 512) =
# 512, pooled, then a linear classifier.
_base_ = ['./student.py', '../cls/_base_/mldrkd.py']
distill_cfg = dict(
    teacher=dict(config='{{fileDirname}}/teacher.py',
                 checkpoint='work_dirs/quickstart/teacher/iter_600.pth'),
    losses={{_base_.mldrkd_losses}},
    connectors=dict(msdf=dict(type='MSDFusion', num_classes=10,
                              branches=[dict(in_channels=128, stride=1, embed_dim=512)] * 4)),
)
