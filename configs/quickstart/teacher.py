# Quick-start teacher: a ResNet (deep 3x3 stem, output stride 16 so its last map is 2x2 at 32 px),
# trained from scratch; the student is a ViT, another family (configs/quickstart/student.py).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='resnet10t', num_classes=10, output_stride=16)
