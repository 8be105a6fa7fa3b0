# Student: PSPNet ResNet-18-d8 on ADE20K (150 classes, 512x512 crops; mmseg ships r18 PSPNet only
# for other sets, so it is the r50 ADE20K config with the r18 widths of pspnet_r18-d8_*).
# Teacher: UPerNet Swin-T trained on ADE20K by OpenMMLab (mIoU 44.41), from the fork's config.
# Children add distill_cfg.losses (and connectors).
_base_ = 'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py'
model = dict(
    pretrained='open-mmlab://resnet18_v1c',
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
distill_cfg = dict(
    teacher=dict(
        config='mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
        # OpenMMLab's published weights (mirrored at https://mmassets.onedl.ai/mmsegmentation/...);
        # without network access download it elsewhere and pass the local file path.
        checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/swin/'
                   'upernet_swin_tiny_patch4_window7_512x512_160k_ade20k_pretrain_224x224_1K/'
                   'upernet_swin_tiny_patch4_window7_512x512_160k_ade20k_pretrain_224x224_1K_'
                   '20210531_112542-e380ad3e.pth'),
    teacher_check=True)
