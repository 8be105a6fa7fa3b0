# MLDR-KD (arXiv 2502.06189) from two teachers of different families, Swin-T (a transformer) and
# ConvNeXt-T (a CNN), to ResNet-18 on CIFAR-100 at 224 (distill_cfg.teachers, docs/distill_cfg.md).
# The items of ./_base_/mldrkd.py (DFRA on the student's logits, on each stage branch and on their
# MSDF fusion, against the teacher's logits) three times: against each teacher's logits (weight
# 0.25 each) and against their ensemble, the mean of the two teachers' logits (weight 0.5), so
# each kind of item weighs 1 in all, as in the one-teacher configs
# (mldrkd_swin-t_to_r18_cifar100.py, and ConvNeXt-T's in
# mldrkd_convnext-t_to_efficientvim-m1_cifar100.py). The student's branches are shared by the
# three sets of items: embed_dim = max(student width 512, both teachers' width 768) = 768, the
# stage branches of mldrkd_swin-t_to_r18_cifar100.py.
#
# Teachers: fine-tuned by configs/cls/teachers/swin-t_cifar100.py and convnext-t_cifar100.py (see
# their comments) into checkpoints/. Recipe: ./_base_/cifar100_224.py (MLDR-KD's release). No
# published number exists for two teachers: train ResNet-18 alone and with each one-teacher config
# under this recipe to compare (tools/compare.py).
_base_ = './_base_/cifar100_224.py'

model = dict(type='TimmClassifier', model_name='resnet18', num_classes=100, img_size=224,
             label_smoothing=0.1)


def mldrkd_items(teacher, weight, tag):
    """./_base_/mldrkd.py's items against ``teacher`` (a tap or an ensemble), weighted, named
    ``dfra_<tag>_<part>`` (dropped from the config by MMEngine, as every function of a config)."""
    stages = [f'stage{i + 1}' for i in range(4)]
    common = dict(teacher=teacher, loss=dict(type='DFRALoss'), weight=weight)
    return ([dict(student='logits', name=f'dfra_{tag}_logits', **common)]
            + [dict(student=stage, connector=f'msdf.branches.{i}', name=f'dfra_{tag}_{stage}',
                    **common) for i, stage in enumerate(stages)]
            + [dict(student=stages, connector='msdf', name=f'dfra_{tag}_fused', **common)])


distill_cfg = dict(
    teachers=dict(
        swin=dict(config=dict(type='TimmClassifier', model_name='swin_tiny_patch4_window7_224',
                              num_classes=100, img_size=224),
                  checkpoint='checkpoints/swin-t_cifar100.pth'),
        convnext=dict(config=dict(type='TimmClassifier', model_name='convnext_tiny',
                                  num_classes=100, img_size=224),
                      checkpoint='checkpoints/convnext-t_cifar100.pth')),
    losses=(mldrkd_items('swin:logits', 0.25, 'swin')
            + mldrkd_items('convnext:logits', 0.25, 'convnext')
            + mldrkd_items(['swin:logits', 'convnext:logits'], 0.5, 'ensemble')),
    connectors=dict(msdf=dict(type='MSDFusion', num_classes=100, branches=[
        dict(in_channels=c, stride=s, embed_dim=768, bias=False)
        for c, s in ((64, 8), (128, 4), (256, 2), (512, 1))])))
