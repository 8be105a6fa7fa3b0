"""MMEngine hooks shared by all task adapters, one module each; importing this package registers
them in MMEngine's ``HOOKS`` under their class names (configs name them, e.g.
``dict(type='TeacherCheckHook')``).

- :class:`TeacherCheckHook` (:mod:`.teacher_check`): the teacher evaluated on the val set before
  training; added by :func:`kdzoo.adapters.wrap` to every distillation run.
- :class:`RandomStateHook` (:mod:`.random_state`): exact resume of the global random streams.
- :class:`SplitClassesHook` (:mod:`.split_classes`): train and val name the same classes, and the
  teacher's and the student's (``load_from`` / ``--resume``) checkpoints the data's classes.
- :class:`LoadCheckHook` (:mod:`.load_check`): ``--resume`` only from this config's run, a
  ``load_from`` that fills the model.

- :class:`TeacherCacheHook` (:mod:`.teacher_cache`): the teacher-output cache (opened before
  training, each batch's stream keys to the model).

The three before it are added to every run by :func:`kdzoo.runner.build_runner`, the last to a
run where a teacher has a cache (``distill_cfg.teacher.cache``,
``distill_cfg.teachers.<name>.cache``).
"""
from .load_check import LoadCheckHook
from .random_state import RandomStateHook
from .split_classes import SplitClassesHook
from .teacher_cache import TeacherCacheHook
from .teacher_check import TeacherCheckHook

__all__ = ['TeacherCheckHook', 'RandomStateHook', 'SplitClassesHook', 'LoadCheckHook',
           'TeacherCacheHook']
