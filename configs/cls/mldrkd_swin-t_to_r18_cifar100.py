# MLDR-KD (arXiv 2502.06189, METHODS.md §3): DFRA on the student's logits, on the logits of each
# stage branch, and on the MSDF fusion of the four branches, each against the teacher's logits,
# all weights 1 (as the first author's release; CE with label smoothing 0.1 is the student's).
# Stage branches (OFA-style StageBranch, shared by the per-stage items and the fusion through
# 'msdf.branches.<i>'): strides 8/4/2/1 bring ResNet-18's 56/28/14/7 maps to 7x7, and
# embed_dim = max(student width 512, teacher width 768) = 768 for every branch (the shared gate).
_base_ = './_base_/swin-t_to_r18.py'

distill_cfg = dict(
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
    connectors=dict(
        msdf=dict(type='MSDFusion', num_classes=100, branches=[
            dict(in_channels=64, stride=8, embed_dim=768),
            dict(in_channels=128, stride=4, embed_dim=768),
            dict(in_channels=256, stride=2, embed_dim=768),
            dict(in_channels=512, stride=1, embed_dim=768),
        ])))
