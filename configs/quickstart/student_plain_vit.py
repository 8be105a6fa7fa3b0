# The quick start's first student, a plain ViT (4 blocks, width 128, 8x8 patches -> a 4x4 token
# grid at 32 px, average-pooled tokens instead of a CLS token), trained alone: the student of the
# teacher comparison (kd_cnn.py, kd_vit.py, kd_two_teachers.py) and of the CPU matrix's pair
# resnet10t_to_vit (configs/plug_and_play/profiles/cpu.py), whose results in docs/results.md were
# measured with it. In the quick start's 500 iterations it stays near chance alone (11.8 %,
# 2026-12-03, seed 0); student.py, the quick start's student now, is the same ViT on a
# convolutional stem.
# 8x8 patches rather than 4x4: a quarter of the tokens (measured 2026-11-30, teacher 65.8 %: 4x4
# patches, alone / MSDCRD / MLDR-KD 23.0 / 23.4 / 42.4 % in 174 / 220 / 322 s; 8x8 patches,
# 13.2 / 22.2 / 35.4 % in 82 / 116 / 181 s).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=10,
             img_size=32, patch_size=8, depth=4, embed_dim=128, num_heads=4,
             class_token=False, global_pool='avg')
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='OneCycleLR', eta_max=1e-3, total_steps={{_base_.max_iters}},
                        pct_start=0.1, by_epoch=False)]
