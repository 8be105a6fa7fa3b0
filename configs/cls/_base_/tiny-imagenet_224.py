# Tiny-ImageNet at 224: the data of the MLDR-KD pairs on Tiny-ImageNet (arXiv 2502.06189 reports
# Tiny-ImageNet; 200 classes, 64 x 64 images, 500 training and 50 validation images per class).
# MLDR-KD's release has no Tiny-ImageNet recipe (github.com/Ethan-Yang02/MLDR-KD: train.py accepts
# dataset cifar100 only, configs/ holds cifar100/*.yaml only), and the paper's Tiny-ImageNet
# settings could not be read in the sources of this change. So this is the release's CIFAR-100
# recipe (./cifar100_224.py: 300 epochs, batch 128 per GPU, Nesterov SGD lr 0.05, weight decay
# 2e-3, warm-up + cosine, RandomResizedCrop to 224 + flip, evaluation at 256 / centre crop 224)
# with the images read from Tiny-ImageNet, 64 px upsampled by the crop as CIFAR's 32 px are: our
# choice, not the paper's. Normalisation: each model's own (ImageNet's), as on CIFAR-100.
#
# Data: tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip) unpacked so that
#   data/tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG,
#                           val/val_annotations.txt}
# exist; read by TinyImageNetCls (kdzoo/adapters/cls/tiny_imagenet.py), validation on val/.
_base_ = './cifar100_224.py'

data_root = 'data/tiny-imagenet-200'
train_dataloader = dict(dataset=dict(type='TinyImageNetCls', root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type='TinyImageNetCls', root=data_root, split='val'))
test_dataloader = val_dataloader
