"""Names of the models of an experiment's pairs, as the tables print them: the model's type and
its name or key options, read from its config, e.g. ``UPerNet/Swin (patch 4, window 4, width 32,
depths 2-2-2-2)`` or ``ViT/vit_tiny_patch16_224 (patch 8, depth 4, width 128)`` (a timm name
whose architecture the config's options change: the options win).

- a timm classifier (``model_name``): ``<family>/<timm name> (<options>)``, the family read
  from the name (:data:`TIMM_FAMILIES`);
- an OpenMMLab model (``backbone``): ``<detector or segmentor>/<backbone> (<options>)``, a
  segmentor named after its decode head (:data:`SEGMENTORS`), the backbone with its depth;

the options are those of :data:`OPTIONS` that the config sets (what changes the architecture's
size; not the input size, classes or regularisation). A type without a short name keeps its
full class name.
"""
import math
import os.path as osp

from mmengine.config import Config

TIMM_FAMILIES = {'resnet': 'ResNet', 'vit': 'ViT', 'swin': 'Swin', 'convnext': 'ConvNeXt',
                 'deit': 'DeiT', 'efficientnet': 'EfficientNet', 'mobilenet': 'MobileNet',
                 'regnet': 'RegNet'}
SEGMENTORS = {'UPerHead': 'UPerNet', 'PSPHead': 'PSPNet', 'FCNHead': 'FCN',
              'ASPPHead': 'DeepLabV3', 'DepthwiseSeparableASPPHead': 'DeepLabV3+',
              'SegformerHead': 'SegFormer'}
BACKBONES = {'SwinTransformer': 'Swin', 'VisionTransformer': 'ViT',
             'MixVisionTransformer': 'MiT'}
# config key -> how the label says it (timm and OpenMMLab spellings of the same option)
OPTIONS = (('patch_size', 'patch {}'), ('window_size', 'window {}'), ('depth', 'depth {}'),
           ('embed_dim', 'width {}'), ('embed_dims', 'width {}'), ('depths', 'depths {}'),
           ('output_stride', 'output stride {}'))


def said(value):
    """A config value as a label prints it: sequences as ``2-2-6-2``."""
    return '-'.join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def options_of(cfg, skip=()):
    return [text.format(said(cfg[key])) for key, text in OPTIONS
            if key in cfg and key not in skip]


def timm_family(name):
    stem = name.removeprefix('test_')
    return next((family for prefix, family in TIMM_FAMILIES.items() if stem.startswith(prefix)),
                stem.split('_')[0])


def backbone_label(backbone):
    """``ResNetV1c-18 (width 16, output stride 8)``, ``Swin (window 4, width 48, ...)``."""
    kind = backbone.get('type', '')
    name = BACKBONES.get(kind, kind)
    depth = backbone.get('depth')
    if depth is not None and kind not in BACKBONES:
        name = f'{name}-{depth}'
    options = options_of(backbone, skip=('depth',))
    if backbone.get('base_channels', 64) != 64:
        options.append(f'width {backbone["base_channels"]}')
    if kind.startswith('ResNet') and backbone.get('strides'):  # stem 4 x the stage strides
        stride = 4 * math.prod(backbone['strides'])
        if stride != 32:
            options.append(f'output stride {stride}')
    return f'{name} ({", ".join(options)})' if options else name


def model_label(model):
    """The label of a model config dict (see the module docstring)."""
    if 'model_name' in model:
        options = options_of(model)
        label = f'{timm_family(model["model_name"])}/{model["model_name"]}'
        return f'{label} ({", ".join(options)})' if options else label
    kind = model.get('type', '')
    head = (model.get('decode_head') or {}).get('type')
    if head:  # a segmentor (EncoderDecoder, ...): named after its decode head
        kind = SEGMENTORS.get(head, head)
    backbone = model.get('backbone')
    return f'{kind}/{backbone_label(backbone)}' if backbone else kind


def config_label(config, root=''):
    """The label of the model of ``config`` (a path, relative to ``root``)."""
    return model_label(Config.fromfile(osp.join(root, config)).model)
