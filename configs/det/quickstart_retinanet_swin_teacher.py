# Quick-start teacher: RetinaNet with a small Swin Transformer backbone (another family than the
# ResNet student), from scratch. FPN levels: 5 of 64 channels at strides 8..128, like the student.
_base_ = './_base_/quickstart_retinanet.py'
model = dict(
    backbone=dict(
        _delete_=True, type='SwinTransformer', embed_dims=48, depths=[2, 2, 2, 2],
        num_heads=[3, 6, 12, 24], window_size=4, mlp_ratio=4, qkv_bias=True, drop_path_rate=0.1,
        patch_norm=True, out_indices=(1, 2, 3), init_cfg=None),
    neck=dict(in_channels=[96, 192, 384], start_level=0, num_outs=5))
