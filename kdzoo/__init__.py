"""kdzoo: knowledge distillation across architecture families (CNN, ViT, Swin, MLP-Mixer).

Importing kdzoo registers the ``kdzoo::`` config scope (kdzoo's own configs) and makes the
``mmseg::`` / ``mmdet::`` scopes resolve to the installed OpenMMLab forks
(:func:`kdzoo.patches.register_config_scopes`); every entry point imports it first.
"""
from kdzoo.patches import register_config_scopes

__version__ = '0.1.0'

register_config_scopes()
