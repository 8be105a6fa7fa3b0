"""Task adapters, installed as ``kdzoo.adapters``: thin glue between kdzoo and each framework.

:func:`wrap` is the one place that turns a user's config into a distillation config: when the
config has ``distill_cfg``, its ``model`` becomes the task's distilling model around that same
student, and the teacher check hook is added. The task and its distilling model are the
config's :class:`kdzoo.tasks.TaskDescriptor` (:func:`kdzoo.tasks.of_config`: read from
``default_scope``), which each adapter registers.
"""
from mmengine.config import ConfigDict

import kdzoo.hooks  # noqa: F401  (registers TeacherCheckHook, which wrap adds)
from kdzoo import tasks
from kdzoo.checkpoint import strip_prefix
from kdzoo.patches import guard_runner_train
from kdzoo.teacher import teacher_configs

guard_runner_train()  # a config with distill_cfg distils or stops (kdzoo/guard.py)

DISTILL_KEYS = {'teacher', 'teachers', 'losses', 'connectors', 'teacher_check', 'monitor',
                'check_teacher_labels'}
STUDENT_PREFIX = 'distiller.student.'


def check_distill_cfg(distill_cfg):
    """The keys of ``distill_cfg``, checked before anything is built. Its items are parsed once,
    when the distilling model is built (:class:`kdzoo.adapters.base.DistillModel`, before the
    teacher)."""
    unknown = set(distill_cfg) - DISTILL_KEYS
    if unknown:
        raise ValueError(f'distill_cfg: unknown keys {sorted(unknown)}; '
                         f'allowed: {sorted(DISTILL_KEYS)}')
    teacher_configs(distill_cfg)  # one of teacher / teachers, the names checked
    if 'losses' not in distill_cfg:
        raise ValueError("distill_cfg: missing 'losses' (see docs/distill_cfg.md)")


def wrap(cfg):
    """Return ``cfg`` with its model wrapped for distillation when it has ``distill_cfg``.

    The student model dict is kept as it is (``model.student``); the task adapter is imported so
    its classes are registered. Configs without ``distill_cfg`` are returned unchanged (a plain
    student run), their adapter still imported. A config whose model already is a distilling
    model (the explicit form, docs/entry_points.md) is not wrapped again: only the teacher check
    hook is added (:func:`explicit_distill_cfg`).
    """
    task = tasks.of_config(cfg)
    if is_distill_model_cfg(cfg):
        distill_cfg = explicit_distill_cfg(cfg)
    elif 'distill_cfg' not in cfg:
        return cfg
    else:
        distill_cfg = ConfigDict(cfg.distill_cfg)
        check_distill_cfg(distill_cfg)
        student = cfg.model
        wrapped = dict(type=task.model_type, student=student, distill_cfg=distill_cfg)
        if 'data_preprocessor' in student:
            wrapped['data_preprocessor'] = student['data_preprocessor']
        cfg.model = ConfigDict(wrapped)
    # the student's training data: its labels are checked against the teacher's (seg, det)
    cfg.model.setdefault('student_data', (cfg.get('train_dataloader') or {}).get('dataset'))
    if distill_cfg.get('teacher_check', True):
        hooks = list(cfg.get('custom_hooks', []))
        hooks.append(dict(type='TeacherCheckHook'))
        cfg.custom_hooks = hooks
    return cfg


def is_distill_model_cfg(cfg):
    """Whether the config's ``model`` already builds a registered task's distilling model (the
    explicit form of docs/entry_points.md: ``type='kdzoo.DistillDetector'``, ...); the config's
    task adapter is imported first, so its distilling model is registered."""
    tasks.of_config(cfg)
    model = cfg.get('model')
    if not isinstance(model, dict):
        return False
    kind = model.get('type')
    classes = tuple(task.distill_model for task in tasks.REGISTERED.values())
    if isinstance(kind, type):
        return issubclass(kind, classes)
    return isinstance(kind, str) and kind.rpartition('.')[2] in {c.__name__ for c in classes}


def explicit_distill_cfg(cfg):
    """The ``distill_cfg`` of a config written in the explicit form: its model's, which is what
    the model is built with (it is not wrapped a second time); its keys checked."""
    distill_cfg = ConfigDict(cfg.model.get('distill_cfg') or {})
    check_distill_cfg(distill_cfg)
    return distill_cfg


def check_explicit_overrides(cfg, cfg_options):
    """On a config in the explicit form, ``cfg_options`` that set the top-level ``distill_cfg``
    would change nothing (the model is built with ``model.distill_cfg``, a copy made when the
    config was read): a ``ValueError`` naming them and the keys to give instead."""
    if not is_distill_model_cfg(cfg):
        return
    ignored = sorted(k for k in cfg_options or {} if k.split('.')[0] == 'distill_cfg')
    if ignored:
        raise ValueError(
            f'--cfg-options {ignored}: this config is in the explicit form (its model is '
            f'{cfg.model.type!r}, built with model.distill_cfg), so the top-level distill_cfg is '
            f'not read; give them as {["model." + k for k in ignored]} (docs/entry_points.md)')


def student_state_dict(cfg, state_dict):
    """The student's own weights from a training checkpoint's ``state_dict`` (a distillation run's
    or a plain run's), keyed as the plain framework model expects them (plain timm for
    classification; the config's mmdet / mmseg model otherwise)."""
    if any(k.startswith(STUDENT_PREFIX) for k in state_dict):
        state_dict = strip_prefix(state_dict, STUDENT_PREFIX)
    return tasks.of_config(cfg).export_state_dict(state_dict)
