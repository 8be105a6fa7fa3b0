# ConvNeXt-T (a CNN, OFA-KD's CIFAR-100 CNN teacher) -> EfficientViM-M1 (a Mamba-family
# state-space model, arXiv 2411.15241) on CIFAR-100 at 224. Method configs add only
# `distill_cfg.losses` (and `connectors`).
#
# Readouts at 224 (timm feature_info):
#   student EfficientViM-M1: stage1..3 (128, 192, 320) channels at 14/7/4 (three stages, no
#                            stage4); dense_logits 4x4 (its fused head per location)
#   teacher ConvNeXt-T:      stage1..4 (96, 192, 384, 768) channels at 56/28/14/7; dense_logits 7x7
#                            (head norm after pooling: does not pool back to the logits)
# The teacher checkpoint comes from configs/cls/teachers/convnext-t_cifar100.py.
_base_ = './cifar100_224.py'

model = dict(type='TimmClassifier', model_name='efficientvim_m1', num_classes=100, img_size=224,
             label_smoothing=0.1)
distill_cfg = dict(
    teacher=dict(
        config=dict(type='TimmClassifier', model_name='convnext_tiny', num_classes=100,
                    img_size=224),
        checkpoint='checkpoints/convnext-t_cifar100.pth'))
