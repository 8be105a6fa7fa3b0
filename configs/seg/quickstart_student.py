# Seg quick-start student alone (the baseline of quickstart_msdcrd.py): a narrow PSPNet
# ResNet-18-d8 (stages 16/32/64/128 wide, logits at 1/8), trained from scratch:
#   kdzoo train kdzoo::seg/quickstart_student.py
_base_ = ['mmseg::_base_/models/pspnet_r50-d8.py', './_base_/quickstart.py']
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16),
    decode_head=dict(in_channels=128, channels=32, num_classes=10),
    auxiliary_head=dict(in_channels=64, channels=16, num_classes=10))
