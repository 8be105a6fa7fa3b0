# Cityscapes variant of msdcrd_swin_to_r18.py: SegFormer MiT-B2 (a transformer, 1/4 logit map)
# trained on Cityscapes by OpenMMLab (mIoU 81.08) -> PSPNet ResNet-18-d8 (512x1024 crops, 1/8
# logit map), MSDCRD on the logit maps. mmseg ships no Swin UPerNet for Cityscapes.
_base_ = 'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'
distill_cfg = dict(
    teacher=dict(
        config='mmseg::segformer/segformer_mit-b2_8xb1-160k_cityscapes-1024x1024.py',
        # OpenMMLab's published weights (mirrored at https://mmassets.onedl.ai/mmsegmentation/...);
        # without network access download it elsewhere and pass the local file path.
        checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/segformer/'
                   'segformer_mit-b2_8x1_1024x1024_160k_cityscapes/'
                   'segformer_mit-b2_8x1_1024x1024_160k_cityscapes_20211207_134205-6096669a.pth'),
    losses=[
        dict(student='logits', teacher='logits', loss=dict(type='MSDCRDLoss', tau=0.1)),
    ],
    teacher_check=True)
