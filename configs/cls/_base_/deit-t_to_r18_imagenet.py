# DeiT-T -> ResNet-18 on ImageNet-1K: the pair of OFA-KD's README command (github.com/Hao840/OFAKD,
# README.md, "Training": --model resnet18 --teacher deit_tiny_patch16_224 --teacher-pretrained
# deit_tiny_patch16_224-a1311bcf.pth --config configs/imagenet/cnn.yaml, 8 GPUs), with its recipe
# (./imagenet_cnn_student.py). The teacher's weights are that file: timm's
# deit_tiny_patch16_224.fb_in1k. Method configs add only `distill_cfg.losses` (and `connectors`).
#
# Readouts at 224 (timm feature_info):
#   student ResNet-18: stage1..4 (64, 128, 256, 512) channels at 56/28/14/7; dense_logits 7x7
#   teacher DeiT-T:    stage1..4 = blocks 3/6/9/12, 192 channels at 14x14; dense_logits 14x14
#                      (patch tokens; the logits read the CLS token, so they do not pool to them)
_base_ = './imagenet_cnn_student.py'

model = dict(type='TimmClassifier', model_name='resnet18', num_classes=1000, img_size=224,
             label_smoothing=0.1)
distill_cfg = dict(
    teacher=dict(
        config=dict(type='TimmClassifier', model_name='deit_tiny_patch16_224.fb_in1k',
                    num_classes=1000, img_size=224, pretrained=True),
        checkpoint=None))
