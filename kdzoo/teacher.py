"""Teacher loading: a model config (file, scoped path, inline dict) or module, plus a checkpoint.

A config names its teachers one of two ways (:func:`teacher_configs`): ``distill_cfg.teacher``,
one teacher (it is the teacher named ``'teacher'``), or ``distill_cfg.teachers = dict(NAME=...,
...)``, several, each named (a Python identifier: it appears in item taps ``'NAME:TAP'``, log keys
``distill.agree_<NAME>`` and dotted cfg-options). Each teacher is ``dict(config=...,
checkpoint=None, cfg_options=None, strict=True, unsafe_load=False, check_classes=True)`` or an
``nn.Module``. ``config`` is a config file path,
a scoped path (``'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'``, ``'mmseg::...'``) whose
``model`` is used, or an inline model dict. ``cfg_options`` overrides keys of that model dict
with dotted keys (``decode_head.num_classes=19``; a leading ``model.`` is accepted).
``strict=False`` loads the matching tensors, warns with the rest and refuses a checkpoint that
fills under half of the teacher (:func:`kdzoo.checkpoint.apply_weights`). The model itself is
built by the adapter's ``build_model`` (the task registry); kdzoo core imports no task framework.

The class names the checkpoint records (:func:`kdzoo.class_names.recorded_classes`) are kept on
the teacher as ``teacher.checkpoint_classes`` (a :class:`kdzoo.class_names.CheckpointClasses`):
the teacher is built before the data, so :class:`kdzoo.hooks.SplitClassesHook` compares them with
the training data's classes before training and stops on another set or order.
``check_classes=False`` switches that check off (for a checkpoint whose class names differ from
the data's but mean the same classes).
"""
import os
import warnings
from collections import OrderedDict

from mmengine.config import Config, ConfigDict
from torch import nn

from kdzoo.checkpoint import apply_weights, load_file, state_dict_of
from kdzoo.class_names import CheckpointClasses, check_switch, recorded_classes
from kdzoo.teacher_names import SINGLE

TEACHER_KEYS = {'config', 'checkpoint', 'cfg_options', 'strict', 'unsafe_load', 'check_classes',
                'cache'}  # 'cache': read by the distilling model (kdzoo/teacher_cache.py)


def teacher_configs(distill_cfg):
    """``{name: teacher cfg (a dict or an nn.Module)}`` of a ``distill_cfg``, in its order:
    ``{'teacher': distill_cfg.teacher}``, or ``distill_cfg.teachers``. Both keys, neither, an empty
    ``teachers`` or a name that is no Python identifier are a ``ValueError`` naming the fix."""
    has_one, has_many = 'teacher' in distill_cfg, 'teachers' in distill_cfg
    if has_one and has_many:
        raise ValueError('distill_cfg has both `teacher` and `teachers`; give one teacher as '
                         'teacher=dict(...) or several as teachers=dict(NAME=dict(...), ...), '
                         'not both (docs/distill_cfg.md)')
    if not (has_one or has_many):
        raise ValueError("distill_cfg: missing 'teacher' (or 'teachers=dict(NAME=dict(...), "
                         "...)' for several; see docs/distill_cfg.md)")
    if has_one:
        return OrderedDict([(SINGLE, distill_cfg['teacher'])])
    teachers = distill_cfg['teachers']
    if not isinstance(teachers, dict) or not teachers:
        raise ValueError('distill_cfg.teachers must be a non-empty dict(NAME=dict(config=..., '
                         f'checkpoint=...), ...), got {teachers!r}')
    if SINGLE in teachers:
        raise ValueError(f"distill_cfg.teachers: the name {SINGLE!r} is the one teacher of "
                         'distill_cfg.teacher; under teachers= give each teacher a name of its own '
                         "(e.g. 'cnn', 'vit')")
    for name in teachers:
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f'distill_cfg.teachers: the name {name!r} is not a Python identifier '
                             '(letters, digits, _; it appears in taps as NAME:TAP, in log keys and '
                             'in cfg-options); rename it')
    return OrderedDict(teachers.items())


def read_config(path):
    """Read a config file or a scoped config path (``kdzoo::...``, ``mmdet::...``,
    ``mmseg::...``)."""
    import kdzoo  # noqa: F401  (registers the config scopes before any config is parsed)
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


def build_teacher(teacher_cfg, build_model, key='distill_cfg.teacher'):
    """Build, load and freeze the teacher.

    Args:
        teacher_cfg: an ``nn.Module`` or ``dict(config=..., checkpoint=..., ...)``.
        build_model: callable turning a model dict into an ``nn.Module`` (the task's registry).
        key: where the teacher's settings are in the config
            (:func:`kdzoo.teacher_names.teacher_key`), for messages.
    Returns the teacher in eval mode with ``requires_grad=False`` everywhere, with
    ``checkpoint_classes`` set when it was loaded from a checkpoint (module docstring). Without a
    checkpoint the teacher's own ``init_weights`` runs (its config's initialisation, pretrained
    backbone included), as its training would have started; with one, the checkpoint is all that
    counts.
    """
    if isinstance(teacher_cfg, nn.Module):
        teacher = teacher_cfg
    else:
        teacher_cfg = dict(teacher_cfg)
        unknown = set(teacher_cfg) - TEACHER_KEYS
        if unknown:
            raise ValueError(f'{key}: unknown keys {sorted(unknown)}; allowed keys '
                             f'{sorted(TEACHER_KEYS)}')
        if 'config' not in teacher_cfg:
            raise ValueError(f'{key}: needs `config`; allowed keys '
                             f'{sorted(TEACHER_KEYS)}, got {sorted(teacher_cfg)}')
        check_switch(teacher_cfg.get('check_classes', True), f'{key}.check_classes')
        teacher = build_model(model_config(teacher_cfg['config'], teacher_cfg.get('cfg_options')))
        if teacher_cfg.get('checkpoint'):  # its weights replace any initialisation: none is run
            source = teacher_cfg['checkpoint']
            checkpoint = load_file(source, unsafe_load=teacher_cfg.get('unsafe_load', False))
            apply_weights(teacher, state_dict_of(checkpoint), source,
                          strict=teacher_cfg.get('strict', True))
            meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
            # what its training data declared (label encoding): checked by the adapters' labels
            teacher.checkpoint_dataset_meta = (meta or {}).get('dataset_meta') \
                if isinstance(meta, dict) else None
            if teacher_cfg.get('check_classes', True):
                teacher.checkpoint_classes = CheckpointClasses(
                    recorded_classes(checkpoint), str(source), 'teacher',
                    f'{key}.check_classes=False')
        else:
            warnings.warn(f'{key} has no checkpoint: the teacher keeps the weights '
                          'its config gives it (random, unless the config loads pretrained '
                          'weights)')
            on_meta = any(p.is_meta for p in teacher.parameters())  # shape checks: no values
            if hasattr(teacher, 'init_weights') and not on_meta:
                teacher.init_weights()
    teacher.requires_grad_(False)
    return teacher.eval()
