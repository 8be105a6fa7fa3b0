"""Class names when training (issue 23 point 5): every training checkpoint records the training
set's classes; a teacher checkpoint or the student's load_from / --resume checkpoint recording
other classes (another set, or the same in another order) stops the run before its first
iteration with both lists, unless the setting the message names opts out; a bare state dict
warns."""
import re
import warnings

import pytest
import torch
from tools_helpers import SEED_LOSSES, STUDENT, TEACHER, runner_config, write_config

from kdzoo.checkpoint import load_file
from kdzoo.class_names import ClassNamesError, recorded_classes


@pytest.fixture(scope='module')
def classes(shapes_data):
    """The shapes set's 4 class names, in label order."""
    from kdzoo.adapters.cls import ImageFolderCls
    return list(ImageFolderCls(shapes_data['train']).classes)


def with_classes(checkpoint, names, path):
    """A copy of the training checkpoint ``checkpoint`` recording ``names``, saved at ``path``."""
    saved = load_file(checkpoint)
    saved['meta']['dataset_meta'] = dict(saved['meta']['dataset_meta'], classes=tuple(names))
    torch.save(saved, path)
    return str(path)


def distill(shapes_data, tmp_path, teacher, **teacher_keys):
    """A 2-iteration KD config of the tiny student from the teacher checkpoint ``teacher``."""
    distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher, **teacher_keys),
                       teacher_check=False, **SEED_LOSSES['kd'])
    cfg = runner_config(shapes_data, tmp_path / 'work', distill_cfg=distill_cfg)
    return write_config(tmp_path / 'distill.py', cfg)


def message(role, source, difference, recorded, data, opt_out):
    return (f'{role} checkpoint {source} was trained on other classes than the data: '
            f'{difference}.\n  checkpoint: {list(recorded)}\n  data:       {list(data)}\nLabel k '
            "would mean another class on each side. Use data with the checkpoint's classes (in "
            f'its order), or, if the two lists name the same classes, set {opt_out}.')


def test_a_training_checkpoint_records_the_training_classes(teacher_checkpoint, classes):
    # MMEngine's runner saves the train set's metainfo; kdzoo's seeded data stream passes it on.
    assert recorded_classes(load_file(teacher_checkpoint)) == tuple(classes)


def test_a_teacher_with_the_classes_in_another_order_stops_before_training(
        shapes_data, teacher_checkpoint, classes, tmp_path):
    # The case: the same classes in another order distilled silently (teacher check 4.2 %).
    from tools.train import main
    reordered = classes[::-1]
    teacher = with_classes(teacher_checkpoint, reordered, tmp_path / 'reordered.pth')
    config = distill(shapes_data, tmp_path, teacher)
    text = message('teacher', teacher, 'the same 4 classes in another order (4 at other labels)',
                   reordered, classes, 'distill_cfg.teacher.check_classes=False')
    for argv in ([config, '--dry-run'], [config]):
        with pytest.raises(ClassNamesError, match='^' + re.escape(text) + '$'):
            main(argv)
    assert not list((tmp_path / 'work').glob('*.pth'))
    # The explicit opt-out trains.
    runner = main([config, '--cfg-options', 'distill_cfg.teacher.check_classes=False'])
    assert runner.iter == 2


def test_a_teacher_of_another_class_set_stops_and_a_bare_state_dict_warns(
        shapes_data, teacher_checkpoint, classes, tmp_path):
    from kdzoo.runner import build_runner
    other = classes[:3] + ['zebra']
    teacher = with_classes(teacher_checkpoint, other, tmp_path / 'other.pth')
    text = message('teacher', teacher, "4 classes vs 4; only in the checkpoint: ['zebra'], only "
                   f"in the data: ['{classes[3]}']", other, classes,
                   'distill_cfg.teacher.check_classes=False')
    with pytest.raises(ClassNamesError, match='^' + re.escape(text) + '$'):
        build_runner(distill(shapes_data, tmp_path, teacher)).train()
    bare = tmp_path / 'bare.pth'
    torch.save(load_file(teacher_checkpoint)['state_dict'], bare)
    runner = build_runner(distill(shapes_data, tmp_path, str(bare)))
    with pytest.warns(UserWarning, match='^' + re.escape(
            f'teacher checkpoint {bare} records no class names (a bare state dict); kdzoo cannot '
            "check that its labels mean the data's 4 classes") + '$'):
        runner.train()
    assert runner.iter == 2


def test_a_student_checkpoint_of_other_classes_stops_load_from_and_resume(
        shapes_data, teacher_checkpoint, classes, tmp_path):
    """The teacher's own training checkpoint as the student's start (the teacher config alone):
    load_from and --resume compare its classes with the training data's."""
    from tools.train import main
    reordered = classes[1:] + classes[:1]
    start = with_classes(teacher_checkpoint, reordered, tmp_path / 'start.pth')
    cfg = runner_config(shapes_data, tmp_path / 'work', model=TEACHER, max_iters=3)
    config = write_config(tmp_path / 'finetune.py', dict(cfg, load_from=start))
    difference = 'the same 4 classes in another order (4 at other labels)'
    opt_out = 'check_classes=False in the config (--cfg-options check_classes=False)'
    with pytest.raises(ClassNamesError, match='^' + re.escape(
            message('load_from', start, difference, reordered, classes, opt_out)) + '$'):
        main([config])
    with pytest.raises(ClassNamesError, match='^' + re.escape(
            message('resume', start, difference, reordered, classes, opt_out)) + '$'):
        main([config, '--resume', start])
    assert not list((tmp_path / 'work').glob('*.pth'))
    runner = main([config, '--resume', start, '--cfg-options', 'check_classes=False'])
    assert runner.iter == 3


def test_checkpoints_of_the_data_classes_train_without_a_warning(
        shapes_data, teacher_checkpoint, tmp_path):
    from kdzoo.runner import build_runner
    runner = build_runner(distill(shapes_data, tmp_path, teacher_checkpoint))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        runner.train()
    assert not [w for w in caught if 'class names' in str(w.message)]
    assert runner.iter == 2


def test_compare_with_a_teacher_of_other_classes_stops_before_the_teachers_row(
        shapes_data, teacher_checkpoint, classes, tmp_path):
    from tools.compare import main
    teacher = with_classes(teacher_checkpoint, classes[::-1], tmp_path / 'reordered.pth')
    work_dir = tmp_path / 'cmp'
    with pytest.raises(ClassNamesError, match='the same 4 classes in another order'):
        main([distill(shapes_data, tmp_path, teacher), '--seeds', '0', '--iters', '2',
              '--evals', '1', '--work-dir', str(work_dir)])
    assert not (work_dir / 'compare.csv').exists()


def test_a_second_teacher_of_other_classes_stops_before_training_naming_its_checkpoint(
        shapes_data, teacher_checkpoint, second_teacher_checkpoint, classes, tmp_path):
    """Several teachers (``distill_cfg.teachers``): every teacher's checkpoint is checked, the
    second one's too, and the message names its checkpoint and its own opt-out."""
    from tools.train import main
    reordered = classes[::-1]
    second = with_classes(second_teacher_checkpoint, reordered, tmp_path / 'reordered.pth')
    teachers = dict(a=dict(config=TEACHER, checkpoint=teacher_checkpoint),
                    b=dict(config=STUDENT, checkpoint=second))
    losses = [dict(student='logits', teacher=f'{name}:logits', loss=dict(type='KDLoss'),
                   name=f'kd_{name}') for name in teachers]
    cfg = runner_config(shapes_data, tmp_path / 'work', distill_cfg=dict(
        teachers=teachers, teacher_check=False, losses=losses))
    config = write_config(tmp_path / 'two.py', cfg)
    text = message('teacher', second, 'the same 4 classes in another order (4 at other labels)',
                   reordered, classes, 'distill_cfg.teachers.b.check_classes=False')
    for argv in ([config, '--dry-run'], [config]):
        with pytest.raises(ClassNamesError, match='^' + re.escape(text) + '$'):
            main(argv)
    assert not list((tmp_path / 'work').glob('*.pth'))
    runner = main([config, '--cfg-options', 'distill_cfg.teachers.b.check_classes=False'])
    assert runner.iter == 2
