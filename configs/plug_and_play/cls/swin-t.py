# Teacher: Swin-T (timm swin_tiny_patch4_window7_224, 28 M parameters) at 64 px, from scratch.
# 4x4 patches give 16/8/4/2 stage grids (96/192/384/768 channels); windows of 4 (7 does not tile
# 16; the 2x2 last stage is one window).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='swin_tiny_patch4_window7_224', num_classes=24,
             img_size=64, window_size=4, drop_path_rate=0.1)
