# MLDR-KD's distill items (arXiv 2502.06189, METHODS.md §3), shared by every classification
# MLDR-KD config: DFRA on the student's logits, on the logits of each of the four stage branches,
# and on the MSDF fusion of the four branches, each against the teacher's logits, all weights 1
# (as the first author's release; CE with label smoothing 0.1 is the student's). The branches are
# the `msdf` connector's (`msdf.branches.<i>`), so the per-stage items and the fusion share them;
# a config that uses these items defines `connectors.msdf` (an `MSDFusion`) for its own pair and
# sets `distill_cfg.losses = {{_base_.mldrkd_losses}}`.
mldrkd_losses = [
    dict(student='logits', teacher='logits', loss=dict(type='DFRALoss'), name='dfra_logits'),
] + [
    dict(student=f'stage{i + 1}', teacher='logits', loss=dict(type='DFRALoss'),
         connector=f'msdf.branches.{i}', name=f'dfra_stage{i + 1}') for i in range(4)
] + [
    dict(student=['stage1', 'stage2', 'stage3', 'stage4'], teacher='logits',
         loss=dict(type='DFRALoss'), connector='msdf', name='dfra_fused'),
]
