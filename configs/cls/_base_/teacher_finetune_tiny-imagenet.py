# Fine-tuning an ImageNet-1k teacher on Tiny-ImageNet at 224 (configs/cls/teachers/*_tiny-imagenet):
# the schedule of ./teacher_finetune.py (our choice: AdamW lr 1e-4, 50 epochs, cosine) on the data
# of ./tiny-imagenet_224.py (read there how to lay Tiny-ImageNet out).
_base_ = './teacher_finetune.py'

data_root = 'data/tiny-imagenet-200'
train_dataloader = dict(dataset=dict(type='TinyImageNetCls', root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type='TinyImageNetCls', root=data_root, split='val'))
test_dataloader = val_dataloader
