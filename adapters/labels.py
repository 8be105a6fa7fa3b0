"""The labels a dataset config declares, and the check that a teacher's config declares the
labels of the student's data (docs/distill_cfg.md, "Labels").

A teacher trained on other labels than the student's data gives its class ``k`` to what the
student calls another class: an mmseg teacher trained on raw ADE20K labels (``reduce_zero_label
=False``) and a student whose data uses ``reduce_zero_label=True`` disagree by one on every
pixel; a detector trained on 5 classes scores other classes than a student of 10. Nothing fails
while training. :func:`check_teacher_labels` stops when the distilling model is built, naming both
sides; ``distill_cfg.check_teacher_labels=False`` (:data:`OPT_OUT`) switches it off.

Labels are read from the dataset configs without building a dataset (no file is read): the class
list is the config's ``metainfo.classes`` or the dataset class's ``METAINFO``; the label encoding
(segmentation) is ``reduce_zero_label`` of the pipeline's ``LoadAnnotations`` when it sets one,
else the dataset's (its config's, else its class's default). A wrapper (``RepeatDataset``,
``ConcatDataset``) is read through to its (first) dataset.
"""
import inspect
from dataclasses import dataclass

from kdzoo.class_names import class_mismatch, shown

OPT_OUT = 'distill_cfg.check_teacher_labels=False'


@dataclass(frozen=True)
class DataLabels:
    """What a dataset config declares: ``classes`` (a tuple, or ``None`` when it names none),
    ``reduce_zero_label`` (``None`` where the task has no such encoding) and ``source``, the
    config it was read from, for messages."""
    classes: tuple
    reduce_zero_label: bool
    source: str


def inner_dataset(cfg):
    """The dataset config inside wrappers (``dataset=`` / the first of ``datasets=``)."""
    while isinstance(cfg, dict):
        if cfg.get('datasets'):
            cfg = cfg['datasets'][0]
        elif isinstance(cfg.get('dataset'), dict):
            cfg = cfg['dataset']
        else:
            break
    return cfg


def dataset_class(kind, registry):
    if isinstance(kind, type):
        return kind
    try:
        return registry.get(kind)
    except (KeyError, TypeError, ValueError):
        return None


def data_labels(dataset_cfg, registry, source, encodes=False):
    """The :class:`DataLabels` of ``dataset_cfg`` (datasets of ``registry``), ``None`` when it is
    no dataset config. ``encodes``: read ``reduce_zero_label`` (segmentation)."""
    cfg = inner_dataset(dataset_cfg)
    if not isinstance(cfg, dict) or 'type' not in cfg:
        return None
    cls = dataset_class(cfg['type'], registry)
    classes = (cfg.get('metainfo') or {}).get('classes') or (
        getattr(cls, 'METAINFO', None) or {}).get('classes')
    reduce = None
    if encodes:
        reduce = cfg.get('reduce_zero_label')
        if reduce is None and cls is not None:
            default = inspect.signature(cls.__init__).parameters.get('reduce_zero_label')
            reduce = bool(default.default) if default is not None else False
        for step in cfg.get('pipeline') or []:
            if (isinstance(step, dict) and str(step.get('type', '')).endswith('LoadAnnotations')
                    and step.get('reduce_zero_label') is not None):
                reduce = bool(step['reduce_zero_label'])
    name = cfg['type'] if isinstance(cfg['type'], str) else cfg['type'].__name__
    return DataLabels(tuple(str(c) for c in classes) if classes else None, reduce,
                      f'{source} ({name})')


def check_teacher_labels(student, teacher, teacher_classes, teacher_name):
    """Stop when the teacher's labels are not the student data's.

    Args:
        student: :class:`DataLabels` of the student's training data.
        teacher: :class:`DataLabels` of the training data the teacher's config declares, or
            ``None`` (a model dict or module: only its class count is known).
        teacher_classes: the number of classes the teacher model predicts (``None``: unknown).
        teacher_name: the teacher, as the message names it (its config).
    Raises ``ValueError`` naming both sides and :data:`OPT_OUT`.
    """
    problems = []
    if teacher_classes is not None and student.classes is not None \
            and teacher_classes != len(student.classes):
        problems.append(f'the teacher predicts {teacher_classes} classes, the student\'s data '
                        f'has {len(student.classes)}')
    if teacher is not None and teacher.classes is not None and student.classes is not None:
        difference = class_mismatch(teacher.classes, student.classes, ('teacher', 'student'))
        if difference is not None:
            problems.append(
                f'its classes are not the student\'s ({difference}'
                f'): teacher {shown(teacher.classes)}, student {shown(student.classes)}')
    if teacher is not None and None not in (teacher.reduce_zero_label, student.reduce_zero_label) \
            and teacher.reduce_zero_label != student.reduce_zero_label:
        problems.append(
            f'its data uses reduce_zero_label={teacher.reduce_zero_label} and the student\'s '
            f'reduce_zero_label={student.reduce_zero_label} (annotation value k is class k of '
            'one and class k-1 of the other)')
    if not problems:
        return
    declared = f' (its data: {teacher.source})' if teacher is not None else ''
    raise ValueError(
        f'teacher {teacher_name}{declared} is not trained on the labels of the student\'s data '
        f'({student.source}): ' + '; '.join(problems) + '. Label k would mean another class on '
        "each side. Use a teacher trained on the student's data (its classes, in its order, and "
        f'its label encoding), or, to distil anyway (features only, labels known to agree), set '
        f'{OPT_OUT}')
