# Swin-T -> ResNet-18 on ImageNet-1K: OFA-KD's CNN-student recipe (./imagenet_cnn_student.py) and
# the teacher with timm's published ImageNet-1K weights, swin_tiny_patch4_window7_224.ms_in1k
# (Microsoft's release, timm 0.6.5's default for this model). Method configs add only
# `distill_cfg.losses` (and `connectors`).
#
# Readouts at 224 (timm feature_info):
#   student ResNet-18: stage1..4 (64, 128, 256, 512) channels at 56/28/14/7; dense_logits 7x7
#   teacher Swin-T:    stage1..4 (96, 192, 384, 768) channels at 56/28/14/7; dense_logits 7x7
_base_ = './imagenet_cnn_student.py'

model = dict(type='TimmClassifier', model_name='resnet18', num_classes=1000, img_size=224,
             label_smoothing=0.1)
distill_cfg = dict(
    teacher=dict(
        config=dict(type='TimmClassifier', model_name='swin_tiny_patch4_window7_224.ms_in1k',
                    num_classes=1000, img_size=224, pretrained=True),
        checkpoint=None))
