# Quick-start second teacher, of another family than the ResNet of teacher.py: MobileViT-XXS
# (Mehta & Rastegari, ICLR 2022; timm mobilevit_xxs), a vision-transformer hybrid: MobileNetV2
# blocks, then transformer blocks over unfolded 2x2 patches in its last three stages. Trained from
# scratch on the same set with the same schedule (600 iterations, AdamW, one cycle to 2e-3), its
# input resized to 64 px inside the model (at 32 px its stride-32 last map would be 1x1). The
# distilling configs kd_cnn.py / kd_vit.py / kd_two_teachers.py read it from
# work_dirs/quickstart/teacher_mobilevit/iter_600.pth:
#   kdzoo train kdzoo::quickstart/teacher_mobilevit.py \
#       --work-dir work_dirs/quickstart/teacher_mobilevit
# Measured 2026-12-03 with that command (seed 0, 2 CPU cores): val top-1 28.6 % in about 2.5 min;
# the ResNet teacher of teacher.py (kdzoo quickstart), same schedule: 66.8 %. A weak
# teacher next to the ResNet, not a useless one: the student alone reaches 12-16 % (docs/results.md,
# "Two teachers"). (The same schedule run through tools/quickstart.py's run() with 1 thread gave
# 33.2 %; why the two runs differ was not investigated.)
# Transformers proper stayed near chance in this budget: a Swin (2x2 patches, window 4, width 32,
# depths 2-2-2-2, about the ResNet's compute) reached 15.0 % at lr 1e-3, and at lr 2e-3 its
# training loss was still 2.28 (chance: 2.30) after 480 of the 600 iterations (stopped there).
_base_ = './_base_.py'
model = dict(type='TimmClassifier', model_name='mobilevit_xxs', num_classes=10, img_size=64)
teacher_iters = 600
train_cfg = dict(max_iters=teacher_iters, val_interval=teacher_iters)
param_scheduler = [dict(type='OneCycleLR', eta_max={{_base_.lr}}, total_steps=teacher_iters,
                        pct_start=0.1, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=teacher_iters))
