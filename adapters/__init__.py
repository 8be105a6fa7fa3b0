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

guard_runner_train()  # a config with distill_cfg distils or stops (kdzoo/guard.py)

DISTILL_KEYS = {'teacher', 'losses', 'connectors', 'teacher_check', 'monitor',
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
    for key in ('teacher', 'losses'):
        if key not in distill_cfg:
            raise ValueError(f'distill_cfg: missing {key!r} (see docs/distill_cfg.md)')


def wrap(cfg):
    """Return ``cfg`` with its model wrapped for distillation when it has ``distill_cfg``.

    The student model dict is kept as it is (``model.student``); the task adapter is imported so
    its classes are registered. Configs without ``distill_cfg`` are returned unchanged (a plain
    student run), their adapter still imported.
    """
    task = tasks.of_config(cfg)
    if 'distill_cfg' not in cfg:
        return cfg
    distill_cfg = ConfigDict(cfg.distill_cfg)
    check_distill_cfg(distill_cfg)
    student = cfg.model
    wrapped = dict(type=task.model_type, student=student, distill_cfg=distill_cfg)
    if 'data_preprocessor' in student:
        wrapped['data_preprocessor'] = student['data_preprocessor']
    wrapped['student_data'] = (cfg.get('train_dataloader') or {}).get('dataset')  # its labels
    cfg.model = ConfigDict(wrapped)
    if distill_cfg.get('teacher_check', True):
        hooks = list(cfg.get('custom_hooks', []))
        hooks.append(dict(type='TeacherCheckHook'))
        cfg.custom_hooks = hooks
    return cfg


def student_state_dict(cfg, state_dict):
    """The student's own weights from a training checkpoint's ``state_dict`` (a distillation run's
    or a plain run's), keyed as the plain framework model expects them (plain timm for
    classification; the config's mmdet / mmseg model otherwise)."""
    if any(k.startswith(STUDENT_PREFIX) for k in state_dict):
        state_dict = strip_prefix(state_dict, STUDENT_PREFIX)
    return tasks.of_config(cfg).export_state_dict(state_dict)
