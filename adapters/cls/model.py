"""A timm classifier as an MMEngine model, with the reserved readouts the distiller taps.

``TimmClassifier`` wraps ``timm.create_model(model_name, ...)`` (the timm model is ``self.model``,
so module-path taps read ``'model.layer4'``, ``'model.blocks.5'``); random init by default,
timm's published weights with ``pretrained=True`` (or ``pretrained_file=`` for a local copy of
them), see :mod:`kdzoo.adapters.cls.pretrained`. Inputs are ``(B, 3, H, W)`` floats in ``[0, 255]``
(see :class:`ClsDataPreprocessor`); every classifier does its own preprocessing, so a ViT teacher
at 224 and a CNN student at 32 share one batch:

    x = (resize(inputs, img_size) - mean) / std          (bilinear; no resize without img_size)

Reserved readouts (:data:`RESERVED`), all from one ``forward_intermediates`` pass:

- ``'logits'`` ``(B, K)``: ``forward_head`` of the final features; equals ``model(x)``.
- ``'dense_logits'`` ``(B, K, h, w)``: the model's own classifier (``get_classifier()``, after the
  head's norm / pre-logits layers when it has them) applied at every location of the final
  feature map. For average-pool + linear heads (ResNet, Swin, Mixer) its spatial mean is exactly
  ``'logits'``. For CLS-token ViTs (the logits read the CLS token, the map holds the patch
  tokens) and heads with a norm or non-linearity after pooling (ConvNeXt, MambaOut, avg-pool ViT
  with ``fc_norm``) it does not pool back to the logits. EfficientViM's fused head (a linear head
  per stage hidden state plus one on the final map, softmax-weighted) gives the hidden-state terms
  at every location plus the final-map head per location, so it pools back exactly
  (:func:`kdzoo.adapters.cls.dense_head.fused_head_dense_logits`). A head that cannot be applied
  per location (not one linear classifier, or a layer that needs pooled features) is a
  ``ValueError`` naming the model.
- ``'pre_logits'`` ``(B, C)``: the pooled final features the classifier reads
  (``forward_head(..., pre_logits=True)``: after the head's pooling, norm and pre-logits layers,
  before the classifier): the features timm's ``FeatureDistillationTask`` distils.
- ``'stage1'`` .. ``'stage4'`` ``(B, C, h, w)``: for hierarchical models (feature reductions that
  differ) the last four ``feature_info`` stages (fewer when the model has fewer: EfficientViM has
  ``stage1`` .. ``stage3`` at reductions 16 / 32 / 64); for plain ViT / Mixer (one reduction) the
  output of block ``round(i * depth / 4) - 1`` for stage ``i``. Un-normed, prefix tokens dropped
  (timm), channels-first whatever the model's own layout (MambaOut's NHWC included).

EfficientViM (Lee et al., CVPR 2025, arXiv 2411.15241; timm ``efficientvim_m1`` .. ``m4``) is the
Mamba-family model kdzoo tests: an HSM-SSD state-space mixer written in plain PyTorch (conv,
softmax, matmul), no CUDA kernels. MambaOut (timm ``mambaout_*``) is a gated CNN without a
state-space layer.
"""
import difflib

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor, BaseModel

from kdzoo.checkpoint import load_weights
from kdzoo.layout import to_map
from kdzoo.registry import MODELS
from kdzoo.tasks import STAGES

from .dense_head import dense_head_problem, dense_logits, fused_head_dense_logits, is_fused_head
from .pretrained import IMAGENET_MEAN, IMAGENET_STD, pretrained_kwargs, published_mean_std

LOGIT_READOUTS = ('logits', 'dense_logits')
RESERVED = LOGIT_READOUTS + ('pre_logits',) + STAGES


def create_timm_model(model_name, num_classes, img_size=None, **timm_kwargs):
    """``timm.create_model``; ``img_size`` is passed to the models that take it (ViT, Swin, Mixer).
    An unknown name raises ``ValueError`` with the closest names. ``pretrained`` /
    ``pretrained_cfg_overlay`` in ``timm_kwargs`` go to timm (see
    :func:`kdzoo.adapters.cls.pretrained.pretrained_kwargs`)."""
    import timm
    if not timm.is_model(model_name):
        close = difflib.get_close_matches(model_name, timm.list_models(), n=5, cutoff=0.5)
        raise ValueError(f'unknown timm model {model_name!r}; closest timm names: '
                         f'{close or "none"} (timm.list_models() lists them all)')
    kwargs = dict(dict(pretrained=False), num_classes=num_classes, **timm_kwargs)
    if img_size is None or 'img_size' in timm_kwargs:
        return timm.create_model(model_name, **kwargs)
    try:
        return timm.create_model(model_name, img_size=img_size, **kwargs)
    except TypeError as err:
        if 'img_size' not in str(err):
            raise
        return timm.create_model(model_name, **kwargs)


def stage_indices(feature_info):
    """``forward_intermediates`` indices of stage1..stage4 (see the module docstring)."""
    reductions = {info['reduction'] for info in feature_info}
    depth = len(feature_info)
    if len(reductions) == 1:
        return [max(round(i * depth / 4) - 1, 0) for i in range(1, 5)]
    return [depth - 4 + i for i in range(4) if depth - 4 + i >= 0]


def check_mode(model, mode):
    if mode not in ('tensor', 'loss', 'predict'):
        raise ValueError(f"{type(model).__name__}: unknown mode {mode!r}; "
                         "use 'tensor', 'loss' or 'predict'")


def predictions(logits, labels=None):
    """Per-image results for the metric: ``dict(pred_score, pred_label, gt_label)``."""
    scores = logits.detach().float().softmax(-1)
    results = []
    for i, score in enumerate(scores):
        result = dict(pred_score=score, pred_label=score.argmax())
        if labels is not None:
            result['gt_label'] = labels[i]
        results.append(result)
    return results


@MODELS.register_module()
class ClsDataPreprocessor(BaseDataPreprocessor):
    """Stack the images (uint8 ``(3, H, W)`` each, or a batch), cast them to float (still in
    ``[0, 255]``: each classifier normalises itself) and move images and labels to the device."""

    def forward(self, data, training=False):
        data = dict(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        data['inputs'] = inputs.float()
        labels = data.get('data_samples')
        if labels is not None and not torch.is_tensor(labels):
            data['data_samples'] = torch.as_tensor(labels, dtype=torch.long)
        return self.cast_data(data)


@MODELS.register_module()
class TimmClassifier(BaseModel):
    """A timm classifier for MMEngine, with kdzoo's reserved readouts.

    Args:
        model_name: a timm model name (``'resnet50'``, or ``'resnet50.a1_in1k'`` for one tag).
        num_classes: number of classes ``K``.
        checkpoint: a state dict of the timm model itself (plain timm keys, e.g. an exported
            student) loaded strictly; ``None`` keeps the random (or pretrained) init.
        img_size: input size the images are resized to (bilinear) before normalisation; also
            passed to timm for models that take it (ViT, Swin, Mixer). ``None``: no resize.
        mean, std: per-channel normalisation of the ``[0, 255]`` inputs; ``None`` (default): the
            published weights' own (timm's ``pretrained_cfg``, ImageNet's for most models) with
            ``pretrained`` / ``pretrained_file``, ImageNet's otherwise.
        label_smoothing: of the cross-entropy loss ``loss_cls``.
        pretrained: load timm's published weights through timm (``timm.create_model(...,
            pretrained=True)``: the Hugging Face / torch hub cache, downloaded once); a head of
            another ``num_classes`` is re-initialised by timm. Without network and without a
            cached copy the build fails within seconds, naming the model, the cache and
            ``pretrained_file`` (:func:`pretrained_kwargs`). Default ``False`` (random init).
        pretrained_file: a local copy of those published weights (``.safetensors`` / ``.pth``
            / ``.bin``, timm keys, any head) loaded by timm as the published ones; implies
            ``pretrained``, no network.
        **timm_kwargs: passed to ``timm.create_model`` (``drop_path_rate``, ``patch_size``, ...).

    Loaded weights (``pretrained`` / ``pretrained_file`` / ``checkpoint``) survive MMEngine's
    ``init_weights()`` (which would otherwise call the timm model's own re-initialisation).

    ``forward(inputs, data_samples, mode)``: ``data_samples`` is a ``LongTensor`` of labels
    ``(B,)``; ``'tensor'`` -> logits, ``'loss'`` -> ``{'loss_cls'}``, ``'predict'`` -> a list of
    ``dict(pred_score, pred_label, gt_label)`` for :class:`Accuracy`.
    """

    def __init__(self, model_name, num_classes, checkpoint=None, img_size=None, mean=None,
                 std=None, label_smoothing=0.0, pretrained=False, pretrained_file=None,
                 data_preprocessor=None, init_cfg=None, **timm_kwargs):
        super().__init__(data_preprocessor=data_preprocessor or ClsDataPreprocessor(),
                         init_cfg=init_cfg)
        self.model_name = model_name
        self.num_classes = num_classes
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else img_size
        self.label_smoothing = label_smoothing
        weights = pretrained_kwargs(model_name, pretrained, pretrained_file)
        self.model = create_timm_model(model_name, num_classes, img_size, **weights,
                                       **timm_kwargs)
        published = published_mean_std(self.model) if weights['pretrained'] else (
            IMAGENET_MEAN, IMAGENET_STD)
        mean, std = mean or published[0], std or published[1]
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float).view(1, -1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float).view(1, -1, 1, 1), False)
        self.stage_indices = stage_indices(self.model.feature_info)
        if checkpoint:
            load_weights(self.model, checkpoint, strict=True)
        self.weights_loaded = bool(weights['pretrained'] or checkpoint)

    def init_weights(self):
        """MMEngine's initialisation, except that loaded weights are kept."""
        if self.weights_loaded:
            self._is_init = True
            return
        super().init_weights()

    def preprocess(self, inputs):
        """``[0, 255]`` images -> resized (to ``img_size``) and normalised model inputs."""
        x = inputs.float() if not inputs.is_floating_point() else inputs
        if self.img_size is not None and tuple(x.shape[-2:]) != tuple(self.img_size):
            x = F.interpolate(x, size=tuple(self.img_size), mode='bilinear', align_corners=False)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def check_readouts(self, names):
        """Raise ``ValueError`` for names that are not readouts this model provides."""
        available = RESERVED[:len(RESERVED) - len(STAGES) + len(self.stage_indices)]
        for name in names:
            if name not in available:
                close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
                raise ValueError(
                    f'{name!r} is not a readout of {self.model_name}; available: {list(available)}'
                    + (f' (closest: {close})' if close else '')
                    + (f' ({self.model_name} has {len(self.stage_indices)} stages)'
                       if name in STAGES else ''))
        problem = dense_head_problem(self.model) if 'dense_logits' in names else None
        if problem:
            raise ValueError(
                f"'dense_logits' is not a readout of {self.model_name}: {problem}, so it cannot "
                "be applied at every location; use 'logits' or the stage readouts")

    def feature_map(self, features, inputs):
        """The final features of ``forward_features`` as a ``(B, C, h, w)`` map."""
        if features.dim() == 3:
            reduction = self.model.feature_info[-1]['reduction']
            grid = tuple(s // reduction for s in inputs.shape[-2:])
            return to_map(features, 'tokens', getattr(self.model, 'num_prefix_tokens', 0), grid)
        channels_last = getattr(self.model, 'output_fmt', 'NCHW') == 'NHWC'
        return to_map(features, 'nhwc' if channels_last else 'nchw')

    def readouts(self, inputs, names):
        """The reserved readouts ``names`` from one forward pass of ``inputs`` (``[0, 255]``),
        the names checked first (:meth:`check_readouts`).

        Always runs the whole model, so module-path taps record even when ``names`` is empty.
        """
        self.check_readouts(names)
        return self.forward_readouts(inputs, names)

    def forward_readouts(self, inputs, names):
        """:meth:`readouts` of names already checked (a distilling model checks them once, when
        built, and reads them every step)."""
        names = list(dict.fromkeys(names))
        x = self.preprocess(inputs)
        stages = [n for n in names if n in STAGES]
        maps = []
        if stages:
            indices = [self.stage_indices[STAGES.index(n)] for n in stages]
            features, maps = self.model.forward_intermediates(
                x, indices=sorted(set(indices)), norm=False, output_fmt='NCHW',
                intermediates_only=False)
            by_index = dict(zip(sorted(set(indices)), maps))
            maps = [by_index[i] for i in indices]
        else:
            features = self.model.forward_features(x)
        out = dict(zip(stages, maps))
        if 'dense_logits' in names and is_fused_head(self.model):
            out['dense_logits'] = fused_head_dense_logits(self.model, features, x)
        elif 'dense_logits' in names:
            out['dense_logits'] = dense_logits(self.model, self.feature_map(features, x))
        if 'pre_logits' in names:
            out['pre_logits'] = self.model.forward_head(features, pre_logits=True)
        logits = self.model.forward_head(features)
        if 'logits' in names:
            out['logits'] = logits
        return out

    def loss(self, logits, labels):
        return {'loss_cls': F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)}

    def forward(self, inputs, data_samples=None, mode='tensor'):
        check_mode(self, mode)
        logits = self.model(self.preprocess(inputs))
        if mode == 'loss':
            return self.loss(logits, data_samples)
        return logits if mode == 'tensor' else predictions(logits, data_samples)


def export_state_dict(state_dict):
    """A :class:`TimmClassifier` state dict (``model.`` keys) -> the plain timm model's keys."""
    prefix = 'model.'
    if not any(k.startswith(prefix) for k in state_dict):
        raise ValueError(f'not a TimmClassifier state dict: no key starts with {prefix!r} '
                         f'(first keys: {list(state_dict)[:5]})')
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
