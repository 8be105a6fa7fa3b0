# The Swin-T teacher fine-tuned on Tiny-ImageNet (200 classes) at 224,
# for mldrkd_swin-t_to_r18_tiny-imagenet.py.
#
# Starts from timm's published ImageNet-1k weights (pretrained=True: downloaded once into the
# Hugging Face cache; offline, set pretrained_file= to a local copy of them). The 1000-class head
# is replaced by a random 200-class one (timm does it).
#   # 1. fine-tune (configs/cls/_base_/teacher_finetune_tiny-imagenet.py: schedule of our choice):
#   bash tools/dist_train.sh configs/cls/teachers/swin-t_tiny-imagenet.py 2
#   # 2. the checkpoint the distillation config reads (a training checkpoint loads as it is):
#   cp work_dirs/swin-t_tiny-imagenet/best_cls_top1_epoch_*.pth \
#      checkpoints/swin-t_tiny-imagenet.pth
_base_ = '../_base_/teacher_finetune_tiny-imagenet.py'
model = dict(type='TimmClassifier', model_name='swin_tiny_patch4_window7_224', num_classes=200,
             pretrained=True, img_size=224, label_smoothing=0.1, drop_path_rate=0.1)
