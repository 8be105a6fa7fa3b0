# The ViT-S/16 teacher fine-tuned on CIFAR-100 at 224,
# for the *_vit-s_to_r18_cifar100.py configs.
#
# Starts from timm's published ImageNet-1k weights (pretrained=True: downloaded once into the
# Hugging Face cache; offline, set pretrained_file= to a local copy of them). The 1000-class head
# is replaced by a random 100-class one (timm does it).
#   # 1. fine-tune (configs/cls/_base_/teacher_finetune.py: the schedule, our choice):
#   bash tools/dist_train.sh configs/cls/teachers/vit-s_cifar100.py 2
#   # 2. the checkpoint the distillation configs read (a training checkpoint loads as it is):
#   cp work_dirs/vit-s_cifar100/best_cls_top1_epoch_*.pth checkpoints/vit-s_cifar100.pth
_base_ = '../_base_/teacher_finetune.py'
model = dict(type='TimmClassifier', model_name='vit_small_patch16_224', num_classes=100,
             pretrained=True, img_size=224, label_smoothing=0.1, drop_path_rate=0.1)
