"""How a config's teachers are named (docs/distill_cfg.md, "Several teachers"): the one teacher of
``distill_cfg.teacher`` is named ``'teacher'`` (:data:`SINGLE`); each of ``distill_cfg.teachers``
by its key, which may not be ``'teacher'``. A leaf module: the distiller, the teacher loading and
the hooks name teachers alike from here."""

SINGLE = 'teacher'  # the name of the one teacher of ``distill_cfg.teacher``


def teacher_key(name, multi):
    """The dotted key of teacher ``name``'s settings in a config, for messages:
    ``distill_cfg.teacher`` or ``distill_cfg.teachers.<name>``."""
    return f'distill_cfg.teachers.{name}' if multi else 'distill_cfg.teacher'


def side_name(name):
    """How messages name teacher ``name``: ``teacher`` (the one of ``distill_cfg.teacher``) or
    ``teacher 'vit'``."""
    return 'teacher' if name == SINGLE else f'teacher {name!r}'
