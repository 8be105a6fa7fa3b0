"""A timm classifier as an MMEngine model, with the reserved readouts the distiller taps.

``TimmClassifier`` wraps ``timm.create_model(model_name, ...)`` (the timm model is ``self.model``,
so module-path taps read ``'model.layer4'``, ``'model.blocks.5'``); random init by default,
timm's published weights with ``pretrained=True`` (or ``pretrained_file=`` for a local copy of
them), see :func:`pretrained_kwargs`. Inputs are ``(B, 3, H, W)`` floats in ``[0, 255]`` (see
:class:`ClsDataPreprocessor`); every classifier does its own preprocessing, so a ViT teacher at 224
and a CNN student at 32 share one batch:

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
  (:func:`fused_head_dense_logits`). A head that cannot be applied per location (not one linear
  classifier, or a layer that needs pooled features) is a ``ValueError`` naming the model.
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
import math
import os

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor, BaseModel
from torch import nn

from kdzoo.checkpoint import load_weights
from kdzoo.layout import to_map
from kdzoo.registry import MODELS
from kdzoo.tasks import STAGES

RESERVED = ('logits', 'dense_logits') + STAGES
LOGIT_READOUTS = ('logits', 'dense_logits')
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def create_timm_model(model_name, num_classes, img_size=None, **timm_kwargs):
    """``timm.create_model``; ``img_size`` is passed to the models that take it (ViT, Swin, Mixer).
    An unknown name raises ``ValueError`` with the closest names. ``pretrained`` /
    ``pretrained_cfg_overlay`` in ``timm_kwargs`` go to timm (see :func:`pretrained_kwargs`)."""
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


# --- timm's published weights ----------------------------------------------------------------

PROBE_TIMEOUT = 3.0  # seconds: one request, no retry, before a download is attempted


def published_cfg(model_name):
    """timm's pretrained config of ``model_name`` (default tag unless ``name.tag``) as a dict."""
    from timm.models import get_pretrained_cfg
    try:
        cfg = get_pretrained_cfg(model_name)
    except RuntimeError as err:  # a tag that does not exist
        raise ValueError(f'TimmClassifier: {err} (timm.list_pretrained({model_name.split(".")[0]!r}'
                         '+ ".*") lists the published tags)') from None
    cfg = cfg.to_dict() if cfg is not None else {}
    if not cfg.get('hf_hub_id') and not cfg.get('url'):
        raise ValueError(f'TimmClassifier: timm publishes no weights for {model_name!r}; use '
                         'pretrained=False, or pretrained_file= for your own copy')
    return cfg


def hf_filenames(cfg):
    """The files timm tries on the Hugging Face Hub, in its order (safetensors first)."""
    name = cfg.get('hf_hub_filename')
    return [name] if name else ['model.safetensors', 'pytorch_model.bin']


def hf_offline():
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it, or as set since it was imported."""
    from huggingface_hub import constants
    env = os.environ.get('HF_HUB_OFFLINE', '').strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or env in ('1', 'ON', 'YES', 'TRUE')


def cached_weights(cfg):
    """``(path of a cached copy or None, cache folder, remote location)`` of the published
    weights: the Hugging Face cache for hub weights, torch hub's ``checkpoints/`` for URLs."""
    if cfg.get('hf_hub_id'):
        from huggingface_hub import constants, try_to_load_from_cache
        repo_id, _, revision = cfg['hf_hub_id'].partition('@')
        for filename in hf_filenames(cfg):
            path = try_to_load_from_cache(repo_id, filename, revision=revision or None)
            if isinstance(path, str):
                return path, constants.HF_HUB_CACHE, f'{repo_id}/{filename} (Hugging Face Hub)'
        return None, constants.HF_HUB_CACHE, f'{repo_id} (Hugging Face Hub)'
    folder = os.path.join(torch.hub.get_dir(), 'checkpoints')
    path = os.path.join(folder, os.path.basename(cfg['url'].split('?')[0]))
    return (path if os.path.isfile(path) else None), folder, cfg['url']


def probe(cfg):
    """One request (``PROBE_TIMEOUT`` s, no retry) to where the weights are published; raises
    the error of that request."""
    if cfg.get('hf_hub_id'):
        if hf_offline():
            raise ConnectionError('HF_HUB_OFFLINE is set')
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        repo_id, _, revision = cfg['hf_hub_id'].partition('@')
        get_hf_file_metadata(hf_hub_url(repo_id, hf_filenames(cfg)[-1], revision=revision or None),
                             timeout=PROBE_TIMEOUT)
    else:
        import urllib.request
        request = urllib.request.Request(cfg['url'], method='HEAD')
        urllib.request.urlopen(request, timeout=PROBE_TIMEOUT).close()


def unreachable(model_name, cache, remote, cause):
    return RuntimeError(
        f'TimmClassifier: cannot load the published weights of {model_name!r} ({remote}): they are '
        f'not in the cache {cache} and the download failed ({type(cause).__name__}: {cause}). '
        f'Either download them once where there is network (python -c "import timm; '
        f"timm.create_model('{model_name}', pretrained=True)\") and copy the cache here "
        '(HF_HOME / TORCH_HOME set where it lives), or give the weights file itself: '
        f"TimmClassifier(model_name='{model_name}', pretrained_file='/path/to/model.safetensors' "
        "or '.pth'). pretrained=True never falls back to random weights.")


def pretrained_kwargs(model_name, pretrained, pretrained_file):
    """The ``timm.create_model`` arguments that load timm's published weights.

    A local file (``pretrained_file``, or a copy already in the cache) is loaded through timm's
    own ``pretrained_cfg_overlay=dict(file=...)``: no network at all. Otherwise one short request
    checks that the weights can be downloaded before timm downloads them, so that without network
    the build fails within seconds with an error naming the model, the cache and the local-file
    option (:func:`unreachable`), instead of timm's retries or a random teacher.
    """
    if pretrained_file is not None:
        if not os.path.isfile(pretrained_file):
            raise FileNotFoundError(
                f'TimmClassifier: pretrained_file {pretrained_file!r} of {model_name!r} not found')
        return dict(pretrained=True, pretrained_cfg_overlay=dict(file=str(pretrained_file)))
    if not pretrained:
        return dict(pretrained=False)
    cfg = published_cfg(model_name)
    path, cache, remote = cached_weights(cfg)
    if path is not None:
        return dict(pretrained=True, pretrained_cfg_overlay=dict(file=path))
    try:
        probe(cfg)
    except Exception as err:  # noqa: BLE001 - any failure means: not downloadable from here
        raise unreachable(model_name, cache, remote, err) from err
    return dict(pretrained=True)


def published_mean_std(model):
    """The published weights' normalisation in ``[0, 255]`` units (timm's pretrained_cfg)."""
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    if 'mean' not in cfg or 'std' not in cfg:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(255 * m for m in cfg['mean']), tuple(255 * s for s in cfg['std'])


def stage_indices(feature_info):
    """``forward_intermediates`` indices of stage1..stage4 (see the module docstring)."""
    reductions = {info['reduction'] for info in feature_info}
    depth = len(feature_info)
    if len(reductions) == 1:
        return [max(round(i * depth / 4) - 1, 0) for i in range(1, 5)]
    return [depth - 4 + i for i in range(4) if depth - 4 + i >= 0]


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
        available = RESERVED[:2 + len(self.stage_indices)]
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
