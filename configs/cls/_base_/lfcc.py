# LFCC's items (arXiv 2405.18524; a reconstruction without released code, docs/losses.md),
# shared by the classification LFCC configs: on each of the four stages the student's stage,
# through the connector `proj<i>` (a 1x1 Projector, +BN, that the config defines for its own
# pair's widths), compared with the teacher's stage; gather_distributed: with several GPUs the
# negatives come from every rank. Weights 1: our choice, untuned. A config sets
# `distill_cfg.losses` to {{_base_.lfcc_stage_losses}}.
lfcc_stage_losses = [
    dict(student=f'stage{i}', teacher=f'stage{i}', connector=f'proj{i}', name=f'lfcc_stage{i}',
         loss=dict(type='LFCCLoss', gather_distributed=True))
    for i in (1, 2, 3, 4)
]
