"""Class names recorded in checkpoints, checked against the data a model is used with.

MMEngine's runner records the training set's ``metainfo`` in every checkpoint it saves
(``checkpoint['meta']['dataset_meta']``, with ``classes``), and kdzoo's exporter copies it
(docs/deploy.md). A model whose recorded classes differ from the data's — another set, or the same
names in another order — predicts label k for a class the data calls something else: every score
and every distilled logit is then wrong without an error. :func:`check_class_names` stops on that,
with both lists; a checkpoint that records no names (a bare ``state_dict``, as other tools write)
gets a warning only, since nothing can be compared.

Where it is applied when training: :mod:`kdzoo.hooks.split_classes` (the teacher's checkpoint, kept
as a :class:`CheckpointClasses` by :func:`kdzoo.teacher.build_teacher`, and the student's
``load_from`` / ``--resume`` checkpoint, against the training set's classes, before training).
"""
import warnings
from typing import NamedTuple, Optional


class ClassNamesError(ValueError):
    """A checkpoint's recorded classes are not the data's (another set, or another order)."""


def check_switch(value, key):
    """A check's on/off setting ``key`` must be a boolean: a typo such as ``'no'`` would be taken
    as on without a word; ``ValueError`` naming the key otherwise. Returns ``value``."""
    if not isinstance(value, bool):
        raise ValueError(f'{key} must be True or False, got {value!r}')
    return value


def dataset_classes(dataset):
    """The class names a dataset declares (``metainfo['classes']``), or ``None``."""
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    return None if classes is None else [str(c) for c in classes]


def recorded_classes(checkpoint):
    """The class names a loaded checkpoint records, as a tuple, or ``None`` when it records none
    (a bare state dict, or a checkpoint without ``meta``): ``meta.dataset_meta.classes``
    (MMEngine; any case of the key, as ``mmdet.apis.init_detector`` reads it) or, in checkpoints
    of the mmcv 1.x era (mmdet 2.x, mmseg 0.x), ``meta.CLASSES``."""
    if not isinstance(checkpoint, dict):
        return None
    meta = checkpoint.get('meta')
    if not isinstance(meta, dict):
        return None
    dataset_meta = meta.get('dataset_meta')
    if isinstance(dataset_meta, dict):
        lowered = {str(key).lower(): value for key, value in dataset_meta.items()}
        classes = lowered.get('classes')
    else:
        classes = meta.get('CLASSES')
    return tuple(str(name) for name in classes) if classes is not None else None


class CheckpointClasses(NamedTuple):
    """What a loaded checkpoint records of its classes, kept until the data is known (the teacher
    is built before the runner builds its data; a hook checks both before training)."""

    classes: Optional[tuple]  # recorded_classes() of the checkpoint
    source: str               # the checkpoint's path, named in the message
    role: str                 # 'teacher', 'load_from', 'resume'
    opt_out: str              # the setting that switches the check off

    def check(self, data_classes):
        """:func:`check_class_names` of this checkpoint against ``data_classes``."""
        check_class_names(self.classes, data_classes, self.source, self.role, self.opt_out)


def shown(names, limit=12):
    """``names`` as a list for a message, cut after ``limit`` with the count."""
    names = list(names)
    more = f' ... ({len(names)} in all)' if len(names) > limit else ''
    return str(names[:limit])[:-1] + (more + ']' if more else ']')


def class_mismatch(recorded, data_classes, sides=('checkpoint', 'data')):
    """How ``recorded`` differs from ``data_classes``, in words (``sides`` names the two lists),
    or ``None`` when they are equal."""
    recorded, data_classes = tuple(recorded), tuple(str(n) for n in data_classes)
    if recorded == data_classes:
        return None
    if sorted(recorded) == sorted(data_classes):
        moved = [name for i, name in enumerate(recorded) if data_classes[i] != name]
        return f'the same {len(recorded)} classes in another order ({len(moved)} at other labels)'
    only_ckpt = [n for n in recorded if n not in set(data_classes)]
    only_data = [n for n in data_classes if n not in set(recorded)]
    return (f'{len(recorded)} classes vs {len(data_classes)}; only in the {sides[0]}: '
            f'{shown(only_ckpt)}, only in the {sides[1]}: {shown(only_data)}')


def check_class_names(recorded, data_classes, source, role, opt_out):
    """Stop when the classes recorded in checkpoint ``source`` are not the data's.

    Args:
        recorded: :func:`recorded_classes` of the checkpoint (``None``: nothing recorded).
        data_classes: the classes of the data the model is used with (``dataset.metainfo``);
            ``None`` when the data names none (nothing to compare).
        source: the checkpoint's path, named in the message.
        role: what the checkpoint is for (``'teacher'``, ``'student'``), named in the message.
        opt_out: the exact setting that switches this check off, named in the message as the fix
            for a user who knows the two lists mean the same classes.
    Raises ``ClassNamesError`` with both lists; warns when ``recorded`` is ``None``.
    """
    if data_classes is None:
        return
    if recorded is None:
        warnings.warn(f'{role} checkpoint {source} records no class names (a bare state dict); '
                      f'kdzoo cannot check that its labels mean the data\'s {len(data_classes)} '
                      'classes')
        return
    difference = class_mismatch(recorded, data_classes)
    if difference is None:
        return
    raise ClassNamesError(
        f'{role} checkpoint {source} was trained on other classes than the data: {difference}.\n'
        f'  checkpoint: {shown(recorded)}\n  data:       {shown(data_classes)}\n'
        f'Label k would mean another class on each side. Use data with the checkpoint\'s classes '
        f'(in its order), or, if the two lists name the same classes, set {opt_out}.')
