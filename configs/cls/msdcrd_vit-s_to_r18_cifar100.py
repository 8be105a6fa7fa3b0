# MSDCRD (arXiv 2502.05835; a reconstruction, docs/losses.md) on the dense logits: the classifier
# of each model applied at every location of its last feature map (student 7x7, teacher 14x14,
# pooled to the smaller grid by the loss). gather_distributed: with several GPUs the sample-wise
# negatives come from every rank, as for one batch on one GPU. Weight 1: our choice, untuned.
_base_ = './_base_/vit-s_to_r18.py'

distill_cfg = dict(losses=[
    dict(student='dense_logits', teacher='dense_logits',
         loss=dict(type='MSDCRDLoss', gather_distributed=True), weight=1.0, name='msdcrd'),
])
