"""kdzoo: knowledge distillation across architecture families (CNN, ViT, Swin, MLP-Mixer).

Importing kdzoo makes ``mmseg::`` / ``mmdet::`` config scopes resolve to the installed OpenMMLab
forks (:func:`kdzoo.patches.register_fork_scopes`); every entry point imports it first.
"""
from kdzoo.patches import register_fork_scopes

__version__ = '0.1.0'

register_fork_scopes()
