# The EfficientViM-M2 teacher fine-tuned on CIFAR-100 at 224,
# for mldrkd_efficientvim-m2_to_r18_cifar100.py.
#
# Starts from timm's published ImageNet-1k weights (pretrained=True: downloaded once into the
# Hugging Face cache; offline, set pretrained_file= to a local copy of them). The 1000-class head
# is replaced by a random 100-class one (timm does it).
#   # 1. fine-tune (configs/cls/_base_/teacher_finetune.py: the schedule, our choice):
#   bash tools/dist_train.sh configs/cls/teachers/efficientvim-m2_cifar100.py 2
#   # 2. the checkpoint the distillation configs read (a training checkpoint loads as it is):
#   cp work_dirs/efficientvim-m2_cifar100/best_cls_top1_epoch_*.pth \
#      checkpoints/efficientvim-m2_cifar100.pth
_base_ = '../_base_/teacher_finetune.py'
model = dict(type='TimmClassifier', model_name='efficientvim_m2', num_classes=100,
             pretrained=True, img_size=224, label_smoothing=0.1, drop_path_rate=0.1)
