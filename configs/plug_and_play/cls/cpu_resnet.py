# CPU profile (tools/plug_and_play.py --profile cpu), transformer -> CNN pair: the student, timm's
# test_resnet (a 4-stage ResNet of 0.4 M parameters) at 32 px on the quick-start shapes set.
_base_ = '../../quickstart/_base_.py'
model = dict(type='TimmClassifier', model_name='test_resnet', num_classes=10)
