# Quick-start student, trained alone (the baseline the distilled student is compared with):
# a small ViT (4 blocks, width 128, 4x4 patches -> an 8x8 token grid at 32 px, average-pooled
# tokens instead of a CLS token, so its dense logits pool back exactly to its logits).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=10,
             img_size=32, patch_size=4, depth=4, embed_dim=128, num_heads=4,
             class_token=False, global_pool='avg')
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='OneCycleLR', eta_max=1e-3, total_steps={{_base_.max_iters}},
                        pct_start=0.1, by_epoch=False)]
