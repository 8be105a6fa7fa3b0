# ResNet-50 -> DeiT-T on ImageNet-1K (a CNN teacher, a transformer student): OFA-KD's recipe for
# transformer students (./imagenet_vit_student.py: its configs/imagenet/vit_mlp.yaml) and the
# teacher with timm's published ImageNet-1K weights resnet50.a1_in1k (resnet50_a1_0-14fe96d1.pth,
# timm 0.6.5's default for resnet50; OFA-KD's README does not name its ResNet-50 checkpoint).
# Method configs add only `distill_cfg.losses` (and `connectors`).
#
# Readouts at 224 (timm feature_info):
#   student DeiT-T:    stage1..4 = blocks 3/6/9/12, 192 channels at 14x14 (OFA-KD's stage_info
#                      takes blocks 2/4/10/12; kdzoo's stage readouts are fixed at depth / 4)
#   teacher ResNet-50: stage1..4 (256, 512, 1024, 2048) channels at 56/28/14/7; dense_logits 7x7
_base_ = './imagenet_vit_student.py'

model = dict(type='TimmClassifier', model_name='deit_tiny_patch16_224', num_classes=1000,
             img_size=224, label_smoothing=0.1, drop_path_rate=0.0)
distill_cfg = dict(
    teacher=dict(
        config=dict(type='TimmClassifier', model_name='resnet50.a1_in1k', num_classes=1000,
                    img_size=224, pretrained=True),
        checkpoint=None))
