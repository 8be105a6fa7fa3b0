# CPU profile (tools/plug_and_play.py --profile cpu), transformer -> CNN pair: the teacher, a ViT
# (6 blocks, width 192, 4x4 patches -> an 8x8 token grid at 32 px, average-pooled tokens), trained
# from scratch on the quick-start shapes set (10 classes, 32 px); longer than its CNN student, as
# teachers are. The tool sets the data roots, the iterations (the one-cycle schedule is stretched
# to them) and the seed.
_base_ = '../../quickstart/_base_.py'
model = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=10,
             img_size=32, patch_size=4, depth=6, embed_dim=192, num_heads=3,
             class_token=False, global_pool='avg')
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='OneCycleLR', eta_max=1e-3, total_steps={{_base_.max_iters}},
                        pct_start=0.1, by_epoch=False)]
