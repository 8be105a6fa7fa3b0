# LFCC (arXiv 2405.18524): UPerNet Swin-T (ADE20K) -> PSPNet ResNet-18-d8, contrastive loss on
# the low-frequency parts of backbone stages 2-4 (student 128/256/512 wide at 1/8, teacher
# 192/384/768 at 1/8, 1/16, 1/32: a 1x1 Projector per stage, grids pooled to the smaller one).
_base_ = './_base_/swin-t_to_r18_ade20k.py'
student_widths = (64, 128, 256, 512)
teacher_widths = (96, 192, 384, 768)
distill_cfg = dict(
    losses=[dict(student=f'stage{i}', teacher=f'stage{i}', loss=dict(type='LFCCLoss'),
                 connector=f'proj{i}', name=f'lfcc_stage{i}') for i in (2, 3, 4)],
    connectors={f'proj{i}': dict(type='Projector', in_channels=student_widths[i - 1],
                                 out_channels=teacher_widths[i - 1]) for i in (2, 3, 4)})
