"""MSDF: the Multi-Scale Dynamic Fusion of MLDR-KD (arXiv 2502.06189; release Ethan-Yang02/MLDR-KD,
``mldr_kd/msdf.py``).

Every student stage ``s = 1..S`` goes through its own :class:`StageBranch`, giving a descriptor
``d_s`` ``(B, D)`` and stage logits ``z_s`` ``(B, K)``. One gate MLP, shared across stages, reads
every descriptor and a softmax over the stage axis turns its outputs into per-sample, per-stage,
per-class weights:

    g_s = W2 GELU(W1 d_s + b1) + b2                 (B, K)    W1: (H, D), W2: (K, H), H = 4K
    w_s = exp(g_s) / sum_r exp(g_r)                  (B, K)    (weights (B, S, K), sum_s w_s = 1)
    fused = sum_s w_s * z_s                          (B, K)

As in the official release, only the stage branches are fused; the student's own final logits do
not join the fusion (the last stage's branch, ``stride=1``, covers the last stage). The gate is
shared, so every branch must have the same ``embed_dim`` (the release uses one ``D = max(student,
teacher width)`` for all); a mismatch is an error. Gate initialisation as the release: truncated
normal (std 0.02), zero bias, so the weights start close to uniform.

Use in a distill config: the fusion item takes the list of stage taps, and per-stage items reuse
the same branches by dotted path, e.g. ``connector='msdf.branches.0'`` (shared parameters).
Each branch then runs once per step, as in the release (Ethan-Yang02/MLDR-KD
``mldr_kd/distiller.py``: one ``(descriptor, logits)`` per projector feeds both the stage loss and
the fusion): the fusion calls :meth:`StageBranch.outputs`, which returns the outputs the per-stage
item already computed for the same stage tensor (and vice versa), so the stage logits, their
graph and the BatchNorm statistics are shared; the Distiller's ``end_step()`` clears them.
"""
import torch
import torch.nn as nn

from kdzoo.registry import MODELS, build

from .stage_branch import StageBranch, init_weights


def build_branch(cfg, num_classes):
    """A :class:`StageBranch` (or registered equivalent) from a config dict or a module.

    A config without ``type`` builds a ``StageBranch``; ``num_classes`` is filled in.
    """
    if isinstance(cfg, nn.Module):
        branch = cfg
    else:
        branch = build(dict(dict(type=StageBranch.__name__, num_classes=num_classes), **cfg))
    if branch.num_classes != num_classes:
        raise ValueError(
            f'MSDFusion: a branch has num_classes={branch.num_classes}, the fusion {num_classes}')
    return branch


@MODELS.register_module()
class MSDFusion(nn.Module):
    """Fuse the stage logits of several :class:`StageBranch` es with a shared gate.

    Args:
        branches: list of branch configs (dicts; ``type`` defaults to ``'StageBranch'`` and
            ``num_classes`` is filled in) or built modules, one per student stage, in order.
        num_classes: ``K``.
        gate_hidden: gate hidden width ``H``; default ``4 * num_classes`` (the release's).

    ``forward(maps)`` takes the list of ``S`` stage maps, one per branch, and returns the fused
    logits ``(B, K)``; :meth:`fuse` also returns the weights ``(B, S, K)``.
    """

    def __init__(self, branches, num_classes, gate_hidden=None):
        super().__init__()
        if not branches:
            raise ValueError('MSDFusion: needs at least one branch')
        self.branches = nn.ModuleList(build_branch(cfg, num_classes) for cfg in branches)
        dims = [branch.embed_dim for branch in self.branches]
        if len(set(dims)) > 1:
            raise ValueError(
                f'MSDFusion: the gate is shared across stages, so every branch needs the same '
                f'embed_dim; got {dims}')
        gate_hidden = gate_hidden or 4 * num_classes
        self.num_classes = num_classes
        self.gate = nn.Sequential(
            nn.Linear(dims[0], gate_hidden), nn.GELU(), nn.Linear(gate_hidden, num_classes))
        self.gate.apply(init_weights)

    def fuse(self, descriptors, logits):
        """Descriptors ``(B, S, D)``, stage logits ``(B, S, K)`` -> fused ``(B, K)``, weights
        ``(B, S, K)`` (softmax over ``S``)."""
        weights = self.gate(descriptors).softmax(dim=1)
        return (weights * logits).sum(dim=1), weights

    def forward(self, maps):
        if not isinstance(maps, (list, tuple)):
            raise ValueError(
                f'MSDFusion: expected a list of {len(self.branches)} stage maps (one per branch), '
                f'got a {type(maps).__name__}; give the item a list of student taps')
        if len(maps) != len(self.branches):
            raise ValueError(
                f'MSDFusion: got {len(maps)} stage maps for {len(self.branches)} branches')
        for i, (branch, x) in enumerate(zip(self.branches, maps)):
            if x.dim() != 4 or x.shape[1] != branch.in_channels:
                raise ValueError(
                    f'MSDFusion: stage {i} needs a (B, {branch.in_channels}, H, W) map for '
                    f'branches[{i}], got shape {tuple(x.shape)}')
        descriptors, logits = zip(*(branch.outputs(x) for branch, x in zip(self.branches, maps)))
        fused, _ = self.fuse(torch.stack(descriptors, dim=1), torch.stack(logits, dim=1))
        return fused
