"""The classes of a training run, checked before training: the train and val datasets name the
same classes (:func:`check_split_classes`), and the checkpoints the run starts from record the
training data's classes, in its order (:func:`check_checkpoint_classes`): each teacher's
(``distill_cfg.teacher.checkpoint``, ``distill_cfg.teachers.<name>.checkpoint``, kept by
:func:`kdzoo.teacher.build_teacher`) and the student's ``load_from`` / ``--resume`` checkpoint.
``--dry-run`` checks the splits and the teachers (it loads no student checkpoint). Labels are
class indices: a checkpoint trained on the same classes in another order distils or fine-tunes
every class into another one without an error. A checkpoint that records no class names (a bare
state dict) gets a warning. Opt-outs, for checkpoints whose class names differ from the data's
but mean the same classes: ``distill_cfg.teacher.check_classes=False`` (a teacher; under
``teachers=``, ``distill_cfg.teachers.<name>.check_classes=False``) and the top-level config key
``check_classes=False`` (the student's ``load_from`` / ``--resume`` checkpoint).
"""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from kdzoo.class_names import (
    CheckpointClasses,
    check_switch,
    dataset_classes,
    recorded_classes,
)
from kdzoo.wrappers import unwrap

STUDENT_OPT_OUT = 'check_classes=False in the config (--cfg-options check_classes=False)'


def check_split_classes(runner):
    """The train and val datasets must name the same classes in the same order: labels are class
    indices, so a class folder missing from one split shifts every label after it (the val top-1
    of a good teacher drops to chance, and nothing else says why)."""
    if runner.val_loop is None:
        return
    train = dataset_classes(runner.train_dataloader.dataset)
    val = dataset_classes(runner.val_loop.dataloader.dataset)
    if train is None or val is None or train == val:
        return
    only_train = [c for c in train if c not in val]
    only_val = [c for c in val if c not in train]
    what = (f'only in train: {only_train}; only in val: {only_val}' if only_train or only_val
            else f'the same classes in another order: train {train}, val {val}')
    raise ValueError(
        f'the train and val datasets name different classes ({len(train)} in train, {len(val)} '
        f'in val; {what}). Labels are class indices, so they would mean other classes in val; '
        'give both splits the same classes (the same class folders).')


def teacher_checkpoint_classes(model):
    """The :class:`~kdzoo.class_names.CheckpointClasses` of a distilling model's teachers (none
    for a plain model, a teacher without a checkpoint or given as a module, or one with
    ``check_classes=False``)."""
    teachers = getattr(unwrap(model), 'teachers', None) or {}
    return [t.checkpoint_classes for t in teachers.values()
            if getattr(t, 'checkpoint_classes', None) is not None]


def loaded_checkpoint_classes(runner, checkpoint):
    """The :class:`~kdzoo.class_names.CheckpointClasses` of the checkpoint the runner loads for
    the student (``load_from``, or ``--resume``'s), or ``None`` with ``check_classes=False``."""
    if not check_switch(runner.cfg.get('check_classes', True), 'check_classes (in the config)'):
        return None
    resume = bool(runner.cfg.get('resume'))
    source = runner.cfg.get('load_from')
    if source is None:  # MMEngine's resume=True alone: the work dir's last checkpoint
        from mmengine.runner import find_latest_checkpoint
        source = find_latest_checkpoint(runner.work_dir)
    return CheckpointClasses(recorded_classes(checkpoint), str(source),
                             'resume' if resume else 'load_from', STUDENT_OPT_OUT)


def check_checkpoint_classes(runner, loaded=None):
    """The teachers' checkpoints and ``loaded`` (the student's ``load_from`` / resume checkpoint,
    :func:`loaded_checkpoint_classes`) must record the training data's classes in its order:
    :class:`kdzoo.class_names.ClassNamesError` with both lists otherwise."""
    data = dataset_classes(runner.train_dataloader.dataset)
    for record in teacher_checkpoint_classes(runner.model) + [loaded]:
        if record is not None:
            record.check(data)


def check_training_classes(runner, loaded=None):
    """:func:`check_split_classes` and :func:`check_checkpoint_classes` (``--dry-run`` calls this
    itself)."""
    check_split_classes(runner)
    check_checkpoint_classes(runner, loaded)


@HOOKS.register_module()
class SplitClassesHook(Hook):
    """Before training, :func:`check_training_classes`, with the student's checkpoint the runner
    loaded (``load_from`` / ``--resume``, seen in ``after_load_checkpoint``); added to every run
    by :func:`kdzoo.runner.build_runner`."""

    priority = 'VERY_HIGH'  # before the teacher check evaluates on the val set

    def __init__(self):
        self.loaded = None

    def after_load_checkpoint(self, runner, checkpoint):
        self.loaded = loaded_checkpoint_classes(runner, checkpoint)

    def before_train(self, runner):
        check_training_classes(runner, self.loaded)
