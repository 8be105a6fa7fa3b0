# Quick-start teacher: a ResNet (deep 3x3 stem, output stride 16 so its last map is 2x2 at 32 px),
# trained from scratch; the student is a ViT, another family (configs/quickstart/student.py).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='resnet10t', num_classes=10, output_stride=16)
# kdzoo quickstart trains it for 600 iterations (distill configs read iter_600.pth)
teacher_iters = 600
train_cfg = dict(max_iters=teacher_iters, val_interval=teacher_iters)
param_scheduler = [dict(type='OneCycleLR', eta_max={{_base_.lr}}, total_steps=teacher_iters,
                        pct_start=0.1, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=teacher_iters))
