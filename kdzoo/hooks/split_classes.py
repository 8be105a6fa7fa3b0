"""Train and val name the same classes: checked before training and in ``--dry-run``."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def dataset_classes(dataset):
    """The class names a dataset declares (``metainfo['classes']``), or ``None``."""
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    return None if classes is None else [str(c) for c in classes]


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


@HOOKS.register_module()
class SplitClassesHook(Hook):
    """Before training, :func:`check_split_classes`; added to every run by
    :func:`kdzoo.runner.build_runner` (``--dry-run`` calls the check itself)."""

    priority = 'VERY_HIGH'  # before the teacher check evaluates on the val set

    def before_train(self, runner):
        check_split_classes(runner)
