"""The ``'dense_logits'`` readout of :class:`kdzoo.adapters.cls.TimmClassifier`: a timm model's
classifier head applied at every location of its final feature map (the maths per head kind is in
the docstring of :mod:`kdzoo.adapters.cls.model`)."""
import math

import torch.nn.functional as F
from torch import nn


def head_layers(model):
    """The per-location part of the model's head: ``[norm?, pre_logits?, classifier]``."""
    head = getattr(model, 'head', None)
    norm = getattr(model, 'fc_norm', None)
    if norm is None or isinstance(norm, nn.Identity):
        norm = getattr(head, 'norm', None)
    pre_logits = getattr(head, 'pre_logits', None)
    return [m for m in (norm, pre_logits) if isinstance(m, nn.Module)
            and not isinstance(m, nn.Identity)] + [model.get_classifier()]


def is_fused_head(model):
    """EfficientViM (and its ``_dist`` variant): a softmax-weighted sum of one linear head per
    stage hidden state and one on the final map (``timm/models/efficientvim.py``)."""
    try:
        from timm.models.efficientvim import EfficientViM
    except ImportError:  # a timm without EfficientViM
        return False
    return isinstance(model, EfficientViM)


def dense_head_problem(model):
    """Why the model's head cannot be applied per location, or ``None`` when it can."""
    if is_fused_head(model):
        return None
    if not isinstance(model.get_classifier(), nn.Linear):
        return (f'its classifier is a {type(model.get_classifier()).__name__}, not one linear '
                'layer')
    for layer in head_layers(model)[:-1]:
        if not isinstance(layer, (nn.LayerNorm, nn.Sequential)):
            return f'its head has a {type(layer).__name__} layer that only works after pooling'
    return None


def dense_logits(model, feature_map):
    """Apply the head's per-location layers to a ``(B, C, h, w)`` map -> ``(B, K, h, w)``."""
    name = type(model).__name__
    x = feature_map.permute(0, 2, 3, 1)
    for layer in head_layers(model):
        if isinstance(layer, nn.LayerNorm):  # LayerNorm2d is one too: normalise over channels
            x = F.layer_norm(x, layer.normalized_shape, layer.weight, layer.bias, layer.eps)
        elif isinstance(layer, nn.Linear):
            if layer.in_features != x.shape[-1]:
                raise ValueError(
                    f'dense_logits: the classifier of {name} takes {layer.in_features} features '
                    f'but the final feature map has {x.shape[-1]} channels (the head transforms '
                    "features after pooling); use the 'logits' readout or a stage tap instead")
            x = layer(x)
        elif isinstance(layer, nn.Sequential):  # NormMlpClassifierHead.pre_logits: Linear + act
            x = layer(x)
        else:
            raise ValueError(f'dense_logits: cannot apply the head layer {type(layer).__name__} of '
                             f"{name} per location; use the 'logits' readout instead")
    return x.permute(0, 3, 1, 2)


def strided_grid(size, reduction):
    """The grid after ``log2(reduction)`` stride-2 convs with ``padding = kernel // 2``
    (each ``ceil(n / 2)``): 224 -> 14, 7, 4 at reductions 16, 32, 64."""
    for _ in range(int(round(math.log2(reduction)))):
        size = (size + 1) // 2
    return size


def fused_head_dense_logits(model, features, inputs):
    """EfficientViM's head per location of its final map -> ``(B, K, h, w)``.

    ``forward_features`` gives the normed hidden state of each stage ``h_i (B, C_i, S_i)`` (over
    the ``S_i`` states, no spatial layout) and the normed final map ``x (B, C, h*w)``; the logits
    are ``sum_i w_i head_i(mean h_i) + w_L head_L(mean x)`` (``w = softmax(weights)``). Applied at
    every location ``p`` of ``x``: ``sum_i w_i head_i(mean h_i) + w_L head_L(x_p)`` -- the hidden
    state terms are the same at every location and the map term is per location, so the spatial
    mean is exactly the logits (all heads are linear). The ``_dist`` variant averages its two
    head sets, as its eval ``forward_head``.
    """
    *hidden, final = features
    grid = [strided_grid(s, model.feature_info[-1]['reduction']) for s in inputs.shape[-2:]]
    if grid[0] * grid[1] != final.shape[-1]:
        raise ValueError(f'dense_logits: the final map of {type(model).__name__} has '
                         f'{final.shape[-1]} locations, not the {grid[0]}x{grid[1]} expected for '
                         f'{tuple(inputs.shape[-2:])} inputs')
    x = final.transpose(1, 2).unflatten(1, grid)  # (B, h, w, C)
    head_sets = [(model.weights, model.heads)]
    if hasattr(model, 'heads_dist'):
        head_sets.append((model.weights_dist, model.heads_dist))
    out = 0
    for weights, heads in head_sets:
        w = weights.softmax(-1)
        pooled = sum(w[i] * head(h.mean(-1)) for i, (head, h) in enumerate(zip(heads, hidden)))
        out = out + (w[-1] * heads[-1](x)).permute(0, 3, 1, 2) + pooled[:, :, None, None]
    return out / len(head_sets)
