# OFA-KD's items (Hao et al., NeurIPS 2023; github.com/Hao840/OFAKD), shared by the
# classification OFA configs with eps 1.0: the OFA loss on the student's logits and on each of
# its four stages through the stage branch `branch<i>` (a StageBranch to the class logits, that
# the config defines for its own pair's widths), each against the teacher's logits. A config
# sets `distill_cfg.losses` to {{_base_.ofa_stage_losses}}.
ofa_stage_losses = [
    dict(student='logits', teacher='logits', loss=dict(type='OFALoss', eps=1.0),
         name='ofa_logits'),
] + [
    dict(student=f'stage{i}', teacher='logits', loss=dict(type='OFALoss', eps=1.0),
         connector=f'branch{i}', name=f'ofa_stage{i}') for i in (1, 2, 3, 4)
]
