# Teacher: ViT-S (timm vit_small_patch16_224, 22 M parameters) at 64 px with 8x8 patches (an 8x8
# token grid; 16x16 patches would leave 4x4), CLS token, from scratch. Stages 1..4 are blocks
# 3/6/9/12 (384 channels at 8x8).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='vit_small_patch16_224', num_classes=24,
             img_size=64, patch_size=8, drop_path_rate=0.1)
