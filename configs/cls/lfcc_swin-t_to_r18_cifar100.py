# LFCC (arXiv 2405.18524; a reconstruction, docs/losses.md) on the four stages: each ResNet-18
# stage goes through a 1x1 Projector (+BN) to the Swin-T stage's width (64/128/256/512 ->
# 96/192/384/768; both at 56/28/14/7) and is compared with it. gather_distributed: with several
# GPUs the negatives come from every rank. Weights 1: our choice, untuned.
_base_ = ['./_base_/swin-t_to_r18.py', './_base_/lfcc.py']

distill_cfg = dict(
    losses={{_base_.lfcc_stage_losses}},
    connectors=dict(
        proj1=dict(type='Projector', in_channels=64, out_channels=96),
        proj2=dict(type='Projector', in_channels=128, out_channels=192),
        proj3=dict(type='Projector', in_channels=256, out_channels=384),
        proj4=dict(type='Projector', in_channels=512, out_channels=768),
    ))
