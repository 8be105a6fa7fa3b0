# --smoke teacher: timm's test_vit (0.3 M parameters) at 32 px.
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='test_vit', num_classes=24, img_size=32)
