# Quick-start second teacher, of another family than the ResNet of teacher.py: a small Swin
# Transformer (shifted-window attention; 2x2 patches -> a 16x16 token grid at 32 px, window 4,
# width 32, depths 2-2-2-2, stages at 16/8/4/2, so its last map is 2x2 like the ResNet's),
# trained from scratch on the same set with the same schedule. The distilling configs
# kd_cnn.py / kd_swin.py / kd_two_teachers.py read it from
# work_dirs/quickstart/teacher_swin/iter_600.pth.
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='swin_tiny_patch4_window7_224', num_classes=10,
             img_size=32, patch_size=2, window_size=4, embed_dim=32, depths=(2, 2, 2, 2),
             num_heads=(1, 2, 4, 8))
teacher_iters = 600
train_cfg = dict(max_iters=teacher_iters, val_interval=teacher_iters)
param_scheduler = [dict(type='OneCycleLR', eta_max={{_base_.lr}}, total_steps=teacher_iters,
                        pct_start=0.1, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=teacher_iters))
