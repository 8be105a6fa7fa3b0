"""SDD: Scale Decoupled Distillation.

Paper: Wei, Luo, Luo, "Scale Decoupled Distillation", CVPR 2024, arXiv:2403.13512.

The global logit couples the semantics of several regions; SDD distils multi-scale *local* logits
as well. Inputs are dense logit maps (the classifier applied at every location of the last stage;
for a linear head after average pooling their global average is the model's logits). For each
``g`` in ``grids`` both maps are average-pooled to ``g × g`` (``adaptive_avg_pool2d``, the paper's
formulation; ``g = 1`` is the global logit), giving ``B · g²`` local samples. Each local sample is
labelled by the teacher:

- *consistent*: the teacher's local argmax equals the reference class — the ground truth ``target``
  when given, else the teacher's global prediction (argmax of its pooled logits) — weight 1;
- *complementary* otherwise, weight ``w_comp``.

``SDD = tau² · (1/B) Σ_g Σ_local w · KL(softmax(t_local / tau) ‖ softmax(s_local / tau))``:
weighted sum over windows (the paper sums the consistent and complementary terms), mean over
images. With ``grids=(1,)`` and no target this is exactly KD.

Defaults: ``grids=(1, 2, 4), tau=4.0, w_comp=2.0``. Inputs: dense logit maps ``(B, K, H, W)`` of
the same ``K``; maps of different size are first resized bilinearly to the smaller grid;
optional ``target`` ``(B,)`` image labels (label maps ``(B, H, W)`` hold no class per image: the
teacher's global prediction is the reference then).
"""
import torch
import torch.nn.functional as F
from torch import nn

from kdzoo import layout
from kdzoo.losses.functional import check_temperature, dense_pair, sample_targets, soft_kl
from kdzoo.registry import MODELS


def sdd_loss(student, teacher, grids=(1, 2, 4), tau=4.0, w_comp=2.0, target=None):
    """SDD of aligned ``(B, K, H, W)`` logit maps; ``target (B,)`` or None (teacher's global
    class)."""
    batch = student.shape[0]
    reference = teacher.mean((2, 3)).argmax(1) if target is None else target
    total = student.new_zeros(())
    for g in grids:
        local_s = layout.as_samples(F.adaptive_avg_pool2d(student, g))
        local_t = layout.as_samples(F.adaptive_avg_pool2d(teacher, g))
        consistent = local_t.argmax(1) == reference.repeat_interleave(g * g)
        weight = torch.where(consistent, 1.0, w_comp)
        total = total + (weight * soft_kl(local_s, local_t, tau)).sum()
    return tau ** 2 * total / batch


@MODELS.register_module()
class SDDLoss(nn.Module):
    """Scale Decoupled Distillation (Wei et al., CVPR 2024) on dense logit maps."""

    def __init__(self, grids=(1, 2, 4), tau=4.0, w_comp=2.0):
        super().__init__()
        self.grids = tuple(grids)
        self.tau = check_temperature(tau, 'SDDLoss', 'the softmax temperature', 4.0)
        self.w_comp = w_comp

    def forward(self, student, teacher, target=None, **ctx):
        student, teacher = dense_pair(student, teacher, 'SDDLoss', mode='bilinear')
        if target is not None and target.dim() != 3:  # label maps: no class per image
            target = sample_targets(target, student.shape[0], 'SDDLoss').to(student.device)
        return sdd_loss(student, teacher, self.grids, self.tau, self.w_comp, target)
