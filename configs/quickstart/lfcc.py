# Quick-start: the student of student.py, same budget, distilled from the quick-start teacher
# with LFCC (arXiv 2405.18524; a reconstruction, docs/losses.md), the items of
# configs/cls/_base_/lfcc.py as the plug-and-play matrix fits them to this pair
# (kdzoo/experiments/recipes.py): each of the ViT's four stages (4x4 maps of width 128) through a
# 1x1 Projector (+BN) to the width of the ResNet teacher's stage (64/128/256/512; 8x8, 4x4, 2x2,
# 2x2 at output stride 16), compared on pooled grids.
_base_ = ['./student.py', '../cls/_base_/lfcc.py']
distill_cfg = dict(
    teacher=dict(config='{{fileDirname}}/teacher.py',
                 checkpoint='work_dirs/quickstart/teacher/iter_600.pth'),
    losses={{_base_.lfcc_stage_losses}},
    connectors={
        f'proj{i}': dict(type='Projector', in_channels=128, out_channels=c)
        for i, c in ((1, 64), (2, 128), (3, 256), (4, 512))},
)
