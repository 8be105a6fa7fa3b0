# Quick-start student, trained alone (the baseline the distilled students are compared with): a
# ViT of 4 blocks, width 128, average-pooled tokens instead of a CLS token (so its dense logits
# pool back exactly to its logits), on a convolutional stem: the ResNet-stem hybrid of the ViT
# paper (Dosovitskiy et al., ICLR 2021, "Hybrid Architecture"; timm's vit_tiny_r_s16_p8_224):
# a 7x7 stride-2 convolution (64 channels, GroupNorm, ReLU) and a stride-2 max-pool, then 2x2
# patches of that 8x8 map -> the same 4x4 token grid as 8x8 patches of the image.
# Measured 2026-12-03, 500 iterations, batch 64 (2 CPU threads, seed 0): 42.6 % val top-1 alone
# (1 thread: seeds 0 / 1 / 2: 42.2 / 41.0 / 40.6 %; batch 32: 31.4 %). Without the stem
# (student_plain_vit.py, the same ViT on 8x8 pixel patches) 11.8 %; on 4x4 patches, width 64,
# lr 2e-3, 14.2 % (1 thread).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='vit_tiny_r_s16_p8_224', num_classes=10,
             img_size=32, patch_size=2, depth=4, embed_dim=128, num_heads=4,
             class_token=False, global_pool='avg')
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='OneCycleLR', eta_max=1e-3, total_steps={{_base_.max_iters}},
                        pct_start=0.1, by_epoch=False)]
