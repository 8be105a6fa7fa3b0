# --smoke student: timm's test_resnet (0.4 M parameters) at 32 px.
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='test_resnet', num_classes=24, img_size=32)
