# Seg quick-start second teacher, a CNN (another family than the Swin of quickstart_teacher.py):
# a narrow UPerNet ResNetV1c-50 (stages 64/128/256/512 wide, logits at 1/4 like the Swin
# UPerNet's, so the two teachers' logit maps average into an ensemble), trained from scratch on
# the generated shapes set, for quickstart_two_teachers.py:
#   kdzoo train kdzoo::seg/quickstart_teacher_r50.py
_base_ = ['mmseg::_base_/models/upernet_r50.py', './_base_/quickstart.py']
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    pretrained=None,
    backbone=dict(stem_channels=16, base_channels=16),
    decode_head=dict(in_channels=[64, 128, 256, 512], channels=64, num_classes=10),
    auxiliary_head=dict(in_channels=256, channels=32, num_classes=10))
