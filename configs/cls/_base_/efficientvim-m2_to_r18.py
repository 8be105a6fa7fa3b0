# EfficientViM-M2 (a Mamba-family state-space model, arXiv 2411.15241) -> ResNet-18 on CIFAR-100
# at 224. Method configs add only `distill_cfg.losses` (and `connectors`): mmengine merges the
# `distill_cfg` dicts and replaces the lists.
#
# Readouts at 224 (timm feature_info):
#   student ResNet-18:       stage1..4 (64, 128, 256, 512) channels at 56/28/14/7; dense_logits 7x7
#   teacher EfficientViM-M2: stage1..3 (128, 256, 512) channels at 14/7/4 (three stages, no
#                            stage4); dense_logits 4x4 (its fused head per location; pools back to
#                            the logits)
# The teacher checkpoint comes from configs/cls/teachers/efficientvim-m2_cifar100.py.
_base_ = './cifar100_224.py'

model = dict(type='TimmClassifier', model_name='resnet18', num_classes=100, img_size=224,
             label_smoothing=0.1)
distill_cfg = dict(
    teacher=dict(
        config=dict(type='TimmClassifier', model_name='efficientvim_m2', num_classes=100,
                    img_size=224),
        checkpoint='checkpoints/efficientvim-m2_cifar100.pth'))
