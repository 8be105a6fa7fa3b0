# MLDR-KD (arXiv 2502.06189, METHODS.md §3), Swin-T -> ResNet-18: the items of
# ./_base_/mldrkd.py with this pair's stage branches. Strides 8/4/2/1 bring ResNet-18's
# 56/28/14/7 maps to 7x7; embed_dim = max(student width 512, teacher width 768) = 768 for every
# branch (the shared gate).
_base_ = ['./_base_/swin-t_to_r18.py', './_base_/mldrkd.py']

distill_cfg = dict(
    losses={{_base_.mldrkd_losses}},
    connectors=dict(msdf=dict(type='MSDFusion', num_classes=100, branches=[
        dict(in_channels=c, stride=s, embed_dim=768)
        for c, s in ((64, 8), (128, 4), (256, 2), (512, 1))])))
