# Mixer-B/16 -> ResNet-18 on CIFAR-100 at 224. Method configs add only `distill_cfg.losses` (and
# `connectors`): mmengine merges the `distill_cfg` dicts and replaces the lists.
#
# Readouts at 224 (timm feature_info):
#   student ResNet-18:  stage1..4 (64, 128, 256, 512) channels at 56/28/14/7; dense_logits 7x7
#   teacher Mixer-B/16: stage1..4 = blocks 3/6/9/12, 768 channels at 14x14; dense_logits 14x14
# The teacher checkpoint comes from configs/cls/teachers/mixer-b16_cifar100.py (see its comment).
_base_ = './cifar100_224.py'

model = dict(type='TimmClassifier', model_name='resnet18', num_classes=100, img_size=224,
             label_smoothing=0.1)
distill_cfg = dict(
    teacher=dict(
        config=dict(type='TimmClassifier', model_name='mixer_b16_224', num_classes=100,
                    img_size=224),
        checkpoint='checkpoints/mixer-b16_cifar100.pth'))
