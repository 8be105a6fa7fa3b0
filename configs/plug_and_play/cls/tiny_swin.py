# --smoke teacher: a one-block-per-stage Swin 16 wide at 32 px (the code path of swin-t.py, seconds
# on a CPU).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='swin_tiny_patch4_window7_224', num_classes=24,
             img_size=32, window_size=4, embed_dim=16, depths=(1, 1, 1, 1),
             num_heads=(1, 1, 1, 1))
