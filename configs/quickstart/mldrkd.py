# Quick-start: the student of student.py distilled with MLDR-KD (arXiv 2502.06189): DFRA on the
# student's logits, on each stage branch's logits and on their MSDF fusion, each against the
# teacher's logits. The ViT's four stages are 8x8 maps of width 128; each branch is a 1x1 conv to
# embed_dim = max(student width 128, teacher width 512) = 512, pooled, then a linear classifier.
_base_ = './student.py'
branch = dict(in_channels=128, stride=1, embed_dim=512)
distill_cfg = dict(
    teacher=dict(config='{{fileDirname}}/teacher.py',
                 checkpoint='work_dirs/quickstart/teacher/iter_600.pth'),
    losses=[
        dict(student='logits', teacher='logits', loss=dict(type='DFRALoss'), name='dfra_logits'),
        dict(student='stage1', teacher='logits', loss=dict(type='DFRALoss'),
             connector='msdf.branches.0', name='dfra_stage1'),
        dict(student='stage2', teacher='logits', loss=dict(type='DFRALoss'),
             connector='msdf.branches.1', name='dfra_stage2'),
        dict(student='stage3', teacher='logits', loss=dict(type='DFRALoss'),
             connector='msdf.branches.2', name='dfra_stage3'),
        dict(student='stage4', teacher='logits', loss=dict(type='DFRALoss'),
             connector='msdf.branches.3', name='dfra_stage4'),
        dict(student=['stage1', 'stage2', 'stage3', 'stage4'], teacher='logits',
             loss=dict(type='DFRALoss'), connector='msdf', name='dfra_fused'),
    ],
    connectors=dict(msdf=dict(type='MSDFusion', num_classes=10, branches=[branch] * 4)),
)
