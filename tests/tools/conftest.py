"""Fixtures of the tools tests: the generated shapes set, a trained teacher checkpoint and cached
distillation runs (each trained once per session)."""
import pytest
from tools_helpers import STUDENT, TEACHER, runner_config, write_config


@pytest.fixture(scope='session')
def shapes_data(tmp_path_factory):
    """4 classes x 8 training images and 4 x 2 validation images of 32 px."""
    from kdzoo.toydata import make_shapes_dataset
    root = tmp_path_factory.mktemp('shapes')
    return make_shapes_dataset(str(root), num_classes=4, per_class=(8, 2))


@pytest.fixture(scope='session')
def teacher_checkpoint(shapes_data, tmp_path_factory):
    """A training checkpoint of the teacher alone (2 iterations with tools/train.py)."""
    from tools.train import main
    root = tmp_path_factory.mktemp('teacher')
    config = write_config(root / 'teacher.py', runner_config(shapes_data, root / 'work',
                                                             model=TEACHER))
    main([config])
    path = root / 'work' / 'iter_2.pth'
    assert path.is_file()
    return str(path)


@pytest.fixture(scope='session')
def second_teacher_checkpoint(shapes_data, tmp_path_factory):
    """A second teacher for the tests of several teachers (``distill_cfg.teachers``): a training
    checkpoint of the student's architecture trained alone (2 iterations with tools/train.py)."""
    from tools.train import main
    root = tmp_path_factory.mktemp('second_teacher')
    main([write_config(root / 'second.py', runner_config(shapes_data, root / 'work',
                                                          model=STUDENT))])
    return str(root / 'work' / 'iter_2.pth')


@pytest.fixture(scope='session')
def distill_config(shapes_data, teacher_checkpoint, tmp_path_factory):
    """``distill_config(name, items, **runner_kwargs)`` writes a config distilling the tiny student
    from the trained teacher with the distill ``items`` (``losses``, ``connectors``, ...)."""
    def make(name, items, **kwargs):
        root = tmp_path_factory.mktemp(name)
        distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint), **items)
        cfg = runner_config(shapes_data, root / 'work', distill_cfg=distill_cfg, **kwargs)
        return write_config(root / f'{name}.py', cfg), root / 'work'
    return make


def clone(state_dict):
    return {k: v.detach().clone() for k, v in state_dict.items()}


@pytest.fixture(scope='session')
def trained(distill_config):
    """``trained(name, items)`` -> ``(config, work_dir, runner, state dict before training,
    teacher state dict before training)``;
    each name is trained (2 iterations) once per session."""
    from kdzoo.runner import build_runner
    runs = {}

    def train(name, items):
        if name not in runs:
            config, work_dir = distill_config(name, items)
            runner = build_runner(config)
            before = clone(runner.model.state_dict())
            teacher = clone(runner.model.teacher.state_dict())
            runner.train()
            runs[name] = (config, work_dir, runner, before, teacher)
        return runs[name]
    return train
