# Quick-start student, trained alone (the baseline the distilled student is compared with):
# a small ViT (4 blocks, width 128, 8x8 patches -> a 4x4 token grid at 32 px, average-pooled
# tokens instead of a CLS token, so its dense logits pool back exactly to its logits).
# 8x8 patches rather than 4x4: a quarter of the tokens, so the three student runs of the quick-start
# fit its 10-minute budget on 2 CPU cores (measured 2026-11-30, teacher 65.8 %: 4x4 patches,
# alone / MSDCRD / MLDR-KD 23.0 / 23.4 / 42.4 % in 174 / 220 / 322 s; 8x8 patches, 13.2 / 22.2 /
# 35.4 % in 82 / 116 / 181 s).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=10,
             img_size=32, patch_size=8, depth=4, embed_dim=128, num_heads=4,
             class_token=False, global_pool='avg')
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='OneCycleLR', eta_max=1e-3, total_steps={{_base_.max_iters}},
                        pct_start=0.1, by_epoch=False)]
