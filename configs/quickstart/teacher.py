# Quick-start teacher: a ConvNeXt (another family than the ResNet student), trained from scratch.
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='convnext_atto', num_classes=10)
