"""Teacher loading: a model config (file, scoped path, inline dict) or module, plus a checkpoint.

``distill_cfg.teacher`` is ``dict(config=..., checkpoint=None, cfg_options=None, strict=True,
unsafe_load=False)`` or an ``nn.Module``. ``config`` is a config file path, a scoped path
(``'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'``, ``'mmseg::...'``) whose ``model`` is used,
or an inline model dict. ``cfg_options`` overrides keys of that model dict with dotted keys
(``decode_head.num_classes=19``; a leading ``model.`` is accepted). ``strict=False`` loads the
matching tensors, warns with the rest and refuses a checkpoint that fills under half of the
teacher (:func:`kdzoo.checkpoint.apply_weights`). The model itself is built by
the adapter's ``build_model`` (the task registry); kdzoo core imports no task framework.
"""
import os
import warnings

from mmengine.config import Config, ConfigDict
from torch import nn

from kdzoo.checkpoint import load_weights

TEACHER_KEYS = {'config', 'checkpoint', 'cfg_options', 'strict', 'unsafe_load'}


def read_config(path):
    """Read a config file or a scoped config path (``mmdet::...``, ``mmseg::...``)."""
    import kdzoo  # noqa: F401  (registers the fork scopes before any config is parsed)
    if '::' in path:
        from mmengine.hub import get_config
        return get_config(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'teacher config not found: {path} (cwd: {os.getcwd()})')
    return Config.fromfile(path)


def model_config(config, cfg_options=None):
    """The teacher's model dict from a path / scoped path / dict, with ``cfg_options`` applied."""
    if isinstance(config, str):
        cfg = read_config(config)
        if 'model' not in cfg:
            raise ValueError(f'teacher config {config} defines no `model`')
        model = cfg.model
    elif isinstance(config, dict):
        model = ConfigDict(config)
    else:
        raise TypeError(f'teacher config must be a path, a scoped path or a model dict, got '
                        f'{type(config).__name__}')
    if cfg_options:
        wrapped = Config(dict(model=model))
        wrapped.merge_from_dict({k if k.startswith('model.') else f'model.{k}': v
                                 for k, v in cfg_options.items()})
        model = wrapped.model
    return model


def build_teacher(teacher_cfg, build_model):
    """Build, load and freeze the teacher.

    Args:
        teacher_cfg: an ``nn.Module`` or ``dict(config=..., checkpoint=..., ...)``.
        build_model: callable turning a model dict into an ``nn.Module`` (the task's registry).
    Returns the teacher in eval mode with ``requires_grad=False`` everywhere. Without a checkpoint
    the teacher's own ``init_weights`` runs (its config's initialisation, pretrained backbone
    included), as its training would have started; with one, the checkpoint is all that counts.
    """
    if isinstance(teacher_cfg, nn.Module):
        teacher = teacher_cfg
    else:
        teacher_cfg = dict(teacher_cfg)
        unknown = set(teacher_cfg) - TEACHER_KEYS
        if unknown or 'config' not in teacher_cfg:
            raise ValueError('distill_cfg.teacher: needs `config`; allowed keys '
                             f'{sorted(TEACHER_KEYS)}, got {sorted(teacher_cfg)}')
        teacher = build_model(model_config(teacher_cfg['config'], teacher_cfg.get('cfg_options')))
        if teacher_cfg.get('checkpoint'):  # its weights replace any initialisation: none is run
            load_weights(teacher, teacher_cfg['checkpoint'], strict=teacher_cfg.get('strict', True),
                         unsafe_load=teacher_cfg.get('unsafe_load', False))
        else:
            warnings.warn('distill_cfg.teacher has no checkpoint: the teacher keeps the weights '
                          'its config gives it (random, unless the config loads pretrained '
                          'weights)')
            on_meta = any(p.is_meta for p in teacher.parameters())  # shape checks: no values
            if hasattr(teacher, 'init_weights') and not on_meta:
                teacher.init_weights()
    teacher.requires_grad_(False)
    return teacher.eval()
