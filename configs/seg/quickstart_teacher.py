# Seg quick-start teacher: a small UPerNet Swin (another family than the ResNet student),
# trained from scratch on the generated shapes set:
#   kdzoo train kdzoo::seg/quickstart_teacher.py
_base_ = ['mmseg::_base_/models/upernet_swin.py', './_base_/quickstart.py']
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=4,
                  drop_path_rate=0.1),
    decode_head=dict(in_channels=[32, 64, 128, 256], channels=64, num_classes=10),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=10))
