# Student: ResNet-18 (timm resnet18, 11 M parameters) at 64 px, from scratch: stages 64/128/256/512
# channels at 16/8/4/2.
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='resnet18', num_classes=24, img_size=64)
