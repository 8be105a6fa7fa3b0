# Quick-start student trained alone (the baseline the distilled student is compared with).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='resnet10t', num_classes=10)
