"""The teacher-output cache with several teachers (issue 26, docs/teacher_cache.md "Several
teachers"), on classification: each teacher of ``distill_cfg.teachers`` with a ``cache`` gets one
of its own. A two-teacher run trained live, with new caches (write) and with the same caches
(read) ends bit for bit the same and the read run's steps run neither teacher; with one teacher
cached, the read run runs the other only; each manifest records its own teacher; a changed
checkpoint of one teacher stops the run naming that teacher's cache and setting; two teachers
sharing one folder are refused; ``tools/cache_teacher.py --cache DIR`` fills ``DIR/<name>`` per
teacher and a training run pointed there reads them all. One teacher: tests/tools/
test_teacher_cache.py."""
import json
import os
from collections import namedtuple

import pytest
import torch
from cache_probes import TeacherCallsHook
from tools_helpers import STUDENT, TEACHER, log_text, runner_config, write_config

from kdzoo.hashing import file_sha
from kdzoo.teacher_cache import TeacherCacheError, human_bytes

ITERS = 4
BATCH = 4  # runner_config's
NAMES = ('a', 'b')
# teacher a: the ConvNeXt teacher of tools_helpers; b: a trained copy of the student's
# architecture (its stage4 has the student's shape: an MSE item needs no connector)
ITEMS = [dict(student='logits', teacher='a:logits', loss=dict(type='KDLoss'), name='kd_a'),
         dict(student='stage4', teacher='b:stage4', loss=dict(type='MSELoss'), name='mse_b'),
         dict(student='logits', teacher=['a:logits', 'b:logits'], loss=dict(type='KDLoss'),
              name='ens')]
NOT_COMPARED = ('time', 'data_time', 'eta', 'memory')  # wall-clock values of the log

Run = namedtuple('Run', 'runner calls state logged')


@pytest.fixture(scope='module')
def checkpoints(teacher_checkpoint, second_teacher_checkpoint):
    """``{name: checkpoint}`` of the two teachers."""
    return dict(a=teacher_checkpoint, b=second_teacher_checkpoint)


def config(root, name, data, checkpoints, caches=None, iters=ITERS):
    """A two-teacher config (augmented shapes set); ``caches``: ``{teacher name: cache}``."""
    teachers = dict(a=dict(config=TEACHER, checkpoint=checkpoints['a']),
                    b=dict(config=STUDENT, checkpoint=checkpoints['b']))
    for teacher, cache in (caches or {}).items():
        teachers[teacher]['cache'] = cache
    cfg = runner_config(data, root / name, max_iters=iters, distill_cfg=dict(
        teachers=teachers, teacher_check=False, losses=ITEMS))
    cfg['train_dataloader']['dataset'].update(augment=True)  # random crops and flips
    return write_config(root / f'{name}.py', cfg)


def logged(work_dir):
    """Every value of the run's ``vis_data/scalars.json`` but the wall-clock ones, per line."""
    paths = [os.path.join(top, name) for top, _, names in os.walk(work_dir) for name in names
             if name == 'scalars.json']
    assert len(paths) == 1, paths
    with open(paths[0]) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in NOT_COMPARED}
                for line in f]


def train_config(path, options=None):
    """Train the config at ``path``; returns its :data:`Run`."""
    from kdzoo.runner import build_runner
    runner = build_runner(path, cfg_options=options)
    calls = TeacherCallsHook()
    runner.register_hook(calls)
    runner.train()
    state = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}
    return Run(runner, calls, state, logged(runner.cfg.work_dir))


def train(root, name, data, checkpoints, **kwargs):
    return train_config(config(root, name, data, checkpoints, **kwargs))


def folders(root):
    return {name: str(root / 'cache' / name) for name in NAMES}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    assert not [k for k in a if not torch.equal(a[k], b[k])]


def manifest(folder):
    with open(os.path.join(folder, 'manifest.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def runs(shapes_data, checkpoints, tmp_path_factory):
    """``(root, live, write, read)``: ITERS iterations each; write and read share the caches
    ``root/cache/<name>``."""
    root = tmp_path_factory.mktemp('teacher_cache_multi')
    live = train(root, 'live', shapes_data, checkpoints)
    write = train(root, 'write', shapes_data, checkpoints, caches=folders(root))
    read = train(root, 'read', shapes_data, checkpoints, caches=folders(root))
    return root, live, write, read


def test_write_and_read_runs_are_bit_identical_to_the_live_run(runs):
    _, live, write, read = runs
    for run in (write, read):
        assert run.runner.iter == ITERS
        assert_same_state(live.state, run.state)
        assert run.logged == live.logged
    steps = [line for line in live.logged if 'loss' in line]
    assert len(steps) == ITERS
    assert {'distill.loss_kd_a', 'distill.loss_mse_b', 'distill.loss_ens',
            'distill.agree_a', 'distill.agree_b'} <= set(steps[0])


def test_the_read_run_runs_neither_teacher_in_its_steps(runs):
    _, live, write, read = runs
    every = list(range(ITERS))
    for run in (live, write):
        assert {name: sorted(calls) for name, calls in run.calls.teacher_calls.items()} == dict(
            a=every, b=every)
    assert read.calls.started == ITERS
    assert read.calls.teacher_calls == dict(a={}, b={})
    text, = log_text(read.runner.work_dir)
    for name, folder in folders(runs[0]).items():
        assert (f'teacher cache {folder}: holds the {ITERS * BATCH} samples of this run; the '
                f"teacher '{name}' will not run in the training steps") in text
    for name in NAMES:
        assert read.runner.model.teacher_caches[name].counts == dict(
            read=ITERS * BATCH, computed=0, written=0)
        assert write.runner.model.teacher_caches[name].counts == dict(
            read=0, computed=ITERS * BATCH, written=ITERS * BATCH)


def test_each_manifest_records_its_own_teacher(runs, checkpoints):
    root, *_ = runs
    a, b = (manifest(root / 'cache' / name) for name in NAMES)
    assert a['teacher_checkpoint'] == file_sha(checkpoints['a'])
    assert b['teacher_checkpoint'] == file_sha(checkpoints['b'])
    assert a['readouts'] == ['logits']  # kd_a and the ensemble
    assert b['readouts'] == ['logits', 'stage4']  # the ensemble and mse_b
    for field in ('teacher_config', 'teacher_weights'):
        assert a[field] != b[field], field
    for field in ('data', 'pipeline', 'preprocessor', 'seed', 'batch_size', 'world_size'):
        assert a[field] == b[field], field  # the run's: one per run, in every cache


def test_with_one_teacher_cached_the_read_run_runs_only_the_other(runs, shapes_data,
                                                                  checkpoints, tmp_path):
    root, live, *_ = runs
    run = train(tmp_path, 'only_a', shapes_data, checkpoints, caches=dict(a=folders(root)['a']))
    assert run.calls.teacher_calls['a'] == {}
    assert sorted(run.calls.teacher_calls['b']) == list(range(ITERS))
    assert list(run.runner.model.teacher_caches) == ['a']
    assert run.runner.model.teacher_caches['a'].counts == dict(read=ITERS * BATCH, computed=0,
                                                               written=0)
    assert_same_state(live.state, run.state)
    assert run.logged == live.logged


def test_another_checkpoint_of_one_teacher_stops_naming_its_cache(runs, shapes_data,
                                                                  checkpoints, tmp_path):
    from kdzoo.runner import build_runner
    root, *_ = runs
    changed = torch.load(checkpoints['b'], weights_only=False)
    weights = changed['state_dict']
    key = next(k for k, v in weights.items() if v.is_floating_point())
    weights[key] = weights[key].clone()
    weights[key].view(-1)[0] += 1e-3  # one weight
    torch.save(changed, tmp_path / 'changed.pth')
    files = {name: sorted(os.listdir(folder)) for name, folder in folders(root).items()}
    runner = build_runner(config(tmp_path, 'changed', shapes_data,
                                 dict(checkpoints, b=str(tmp_path / 'changed.pth')),
                                 caches=folders(root)))
    calls = TeacherCallsHook()
    runner.register_hook(calls)
    with pytest.raises(TeacherCacheError) as info:
        runner.train()
    b = folders(root)['b']
    lines = str(info.value).splitlines()
    assert lines[-1] == f'teacher cache {b}: the teacher checkpoint (its bytes) differs'
    assert lines[0].startswith(f'The teacher cache in {b} was written for another setup: the '
                               'teacher checkpoint (its bytes) differs (cache: ')
    # the setting to change is the teacher's own
    assert 'give distill_cfg.teachers.b.cache another dir' in lines[0]
    assert calls.started == 0
    assert {name: sorted(os.listdir(folder)) for name, folder in folders(root).items()} == files


def test_two_teachers_sharing_one_cache_folder_are_refused(shapes_data, checkpoints, tmp_path):
    """Each teacher's readouts are their own function of its weights: one folder would hold one
    manifest, and the second teacher would be told the cache was written for another setup."""
    from kdzoo.runner import build_runner
    shared = str(tmp_path / 'cache')
    runner = build_runner(config(tmp_path, 'shared', shapes_data, checkpoints,
                                 caches=dict(a=shared, b=dict(dir=shared + '/'))))
    with pytest.raises(ValueError) as info:
        runner.train()
    assert str(info.value) == (
        f'distill_cfg.teachers.a.cache and distill_cfg.teachers.b.cache are the same folder '
        f'({shared}): each teacher needs a cache of its own (its manifest records that '
        'teacher). Give each its own dir, e.g. DIR/a and DIR/b (kdzoo cache-teacher --cache '
        'DIR does).')
    assert not os.path.exists(shared)


def test_cache_teacher_fills_one_cache_per_teacher_and_a_run_reads_them_all(
        runs, shapes_data, checkpoints, tmp_path, capsys):
    from kdzoo.runner import load_config
    from kdzoo.teacher_cache_fill import cache_options
    from tools.cache_teacher import main
    _, live, *_ = runs
    path = config(tmp_path, 'filled', shapes_data, checkpoints)  # no cache of its own
    caches = tmp_path / 'caches'
    main([path, '--cache', str(caches), '--work-dir', str(tmp_path / 'fill_logs')])
    out = capsys.readouterr().out
    assert f'seed 0, {ITERS} iterations -> {caches / "a"}, {caches / "b"}' in out
    for name in NAMES:
        assert (f'teacher cache {caches / name}: 0 samples read, {ITERS * BATCH} computed by the '
                f'teacher, {ITERS * BATCH} stored') in out
        assert manifest(caches / name)['teacher_checkpoint'] == file_sha(checkpoints[name])
    assert sorted(os.listdir(caches)) == list(NAMES)
    options = cache_options(load_config(path), str(caches))
    assert {key: value['dir'] for key, value in options.items()} == {
        f'distill_cfg.teachers.{name}.cache': str(caches / name) for name in NAMES}
    run = train_config(path, options)
    assert run.calls.teacher_calls == dict(a={}, b={})
    assert {name: cache.counts for name, cache in run.runner.model.teacher_caches.items()} == {
        name: dict(read=ITERS * BATCH, computed=0, written=0) for name in NAMES}
    assert_same_state(live.state, run.state)


def test_a_wrong_cache_value_of_one_teacher_names_its_setting(shapes_data, checkpoints,
                                                              tmp_path):
    from kdzoo.runner import build_runner
    path = config(tmp_path, 'wrong', shapes_data, checkpoints,
                  caches=dict(a=str(tmp_path / 'a'), b=dict(dir=str(tmp_path / 'b'),
                                                            dtype='fp16')))
    with pytest.raises(ValueError) as info:
        build_runner(path)
    assert str(info.value) == ("distill_cfg.teachers.b.cache.dtype must be one of ['float32', "
                               "'float16', 'bfloat16'], got 'fp16'")


def test_cache_teacher_runs_only_the_teachers_with_a_cache(shapes_data, checkpoints, tmp_path,
                                                           monkeypatch):
    """With only teacher a cached in the config, filling runs a alone: b, which a training step
    would run live, is not run (its forward would be paid for nothing)."""
    from kdzoo.adapters.base import DistillModel
    from tools.cache_teacher import main
    path = config(tmp_path, 'one', shapes_data, checkpoints, caches=dict(a=str(tmp_path / 'a')))
    ran, run_teacher = [], DistillModel.run_teacher
    monkeypatch.setattr(DistillModel, 'run_teacher',
                        lambda self, name, inputs: ran.append(name) or run_teacher(self, name,
                                                                                   inputs))
    filled = main([path, '--work-dir', str(tmp_path / 'fill_logs')])
    assert list(filled[0]) == ['a'] and set(ran) == {'a'}
    assert filled[0]['a'].counts == dict(read=0, computed=ITERS * BATCH, written=ITERS * BATCH)


def test_caches_that_fit_the_disk_one_by_one_but_not_together_stop_before_training(
        shapes_data, checkpoints, tmp_path, monkeypatch):
    """The free disk is counted once for the run: teacher b's cache is checked against what is
    left after teacher a's (each would fit alone)."""
    import shutil

    from kdzoo.runner import build_runner
    # per sample: position and index (16 bytes), then float32 values: a's 4 logits; b's 4 logits
    # and its 96 x 2 x 2 stage4 map
    need_a, need_b = ITERS * BATCH * (16 + 4 * 4), ITERS * BATCH * (16 + (4 + 96 * 4) * 4)
    usage = namedtuple('usage', 'total used free')
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: usage(10 ** 6, 0, need_b + 100))
    runner = build_runner(config(tmp_path, 'disk', shapes_data, checkpoints,
                                 caches=folders(tmp_path)))
    calls = TeacherCallsHook()
    runner.register_hook(calls)
    with pytest.raises(TeacherCacheError) as info:
        runner.train()
    last = str(info.value).splitlines()[-1]
    assert last == (f'teacher cache {folders(tmp_path)["b"]}: needs {human_bytes(need_b)}, '
                    f'{human_bytes(need_b + 100 - need_a)} free, after {human_bytes(need_a)} for '
                    'the other teacher caches of this run')
    assert calls.started == 0
