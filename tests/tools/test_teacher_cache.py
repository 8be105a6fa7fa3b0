"""The teacher-output cache on classification (issue 25, docs/teacher_cache.md): a run trained
live, with a new cache (write) and with the same cache (read) ends bit for bit the same (student
weights and every logged value) and the read run's training steps never run the teacher; a run
longer than its cache computes and appends the rest; a cache written for another setup (one
teacher weight, any manifest field), a shard killed mid-write, a corrupted shard, another data
order or padding, a disk too small and wrong ``cache`` values are each caught as documented.
Segmentation and detection: tests/adapters/test_teacher_cache_dense.py; 2 processes:
tests/tools/test_teacher_cache_ddp.py."""
import json
import os
import os.path as osp
import shutil
from collections import namedtuple

import pytest
import torch
from cache_probes import TeacherCallsHook
from tools_helpers import TEACHER, log_text, runner_config, write_config

from kdzoo.teacher_cache import (
    LAYOUT_FIELDS,
    MANIFEST_FIELDS,
    SHARD_NAME,
    CacheSpec,
    TeacherCache,
    TeacherCacheError,
    cache_spec,
    topk_compress,
    topk_expand,
)

ITEMS = [dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='kd')]
ITERS = 4
BATCH = 4  # runner_config's
NOT_COMPARED = ('time', 'data_time', 'eta', 'memory')  # wall-clock values of the log


Run = namedtuple('Run', 'runner calls state logged')


def logged(work_dir):
    """Every value of the run's ``vis_data/scalars.json`` but the wall-clock ones, per line."""
    paths = [osp.join(root, name) for root, _, names in os.walk(work_dir) for name in names
             if name == 'scalars.json']
    assert len(paths) == 1, paths
    with open(paths[0]) as f:
        lines = [json.loads(line) for line in f]
    return [{k: v for k, v in line.items() if k not in NOT_COMPARED} for line in lines]


def config(root, name, data, checkpoint, cache=None, iters=ITERS, items=ITEMS):
    """A KD config (the student and teacher of tools_helpers, augmented shapes set)."""
    teacher = dict(config=TEACHER, checkpoint=checkpoint)
    if cache is not None:
        teacher['cache'] = cache
    cfg = runner_config(data, root / name, max_iters=iters,
                        distill_cfg=dict(teacher=teacher, teacher_check=False, losses=items))
    cfg['train_dataloader']['dataset'].update(augment=True)  # random crops and flips
    return write_config(root / f'{name}.py', cfg)


def train(root, name, data, checkpoint, **kwargs):
    """Train a :func:`config` run; returns its :data:`Run`."""
    from kdzoo.runner import build_runner
    runner = build_runner(config(root, name, data, checkpoint, **kwargs))
    calls = TeacherCallsHook()
    runner.register_hook(calls)
    runner.train()
    state = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}
    return Run(runner, calls, state, logged(root / name))


def failed_run(root, name, data, checkpoint, error, **kwargs):
    """A :func:`config` run that raises ``error``; returns ``(exception info, its
    TeacherCallsHook)``."""
    from kdzoo.runner import build_runner
    runner = build_runner(config(root, name, data, checkpoint, **kwargs))
    calls = TeacherCallsHook()
    runner.register_hook(calls)
    with pytest.raises(error) as info:
        runner.train()
    return info, calls


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different


def shards(directory):
    return sorted(name for name in os.listdir(directory) if SHARD_NAME.match(name))


def last_line(info):
    return str(info.value).splitlines()[-1]


@pytest.fixture(scope='module')
def runs(shapes_data, teacher_checkpoint, tmp_path_factory):
    """``(root, live, write, read)``: ITERS iterations each; write and read share ``root/cache``."""
    root = tmp_path_factory.mktemp('teacher_cache')
    live = train(root, 'live', shapes_data, teacher_checkpoint)
    write = train(root, 'write', shapes_data, teacher_checkpoint, cache=str(root / 'cache'))
    read = train(root, 'read', shapes_data, teacher_checkpoint, cache=str(root / 'cache'))
    return root, live, write, read


def test_write_and_read_runs_are_bit_identical_to_the_live_run(runs):
    _, live, write, read = runs
    for run in (write, read):
        assert run.runner.iter == ITERS
        assert_same_state(live.state, run.state)
        assert run.logged == live.logged
    steps = [line for line in live.logged if 'loss' in line]  # then the final validation's
    assert len(steps) == ITERS
    assert {'loss', 'loss_cls', 'distill.loss_kd', 'distill.agree'} <= set(steps[0])


def test_the_read_run_never_runs_the_teacher_in_its_steps(runs):
    _, live, write, read = runs
    assert sorted(live.calls.calls) == sorted(write.calls.calls) == list(range(ITERS))
    assert read.calls.started == ITERS and read.calls.calls == {}
    assert read.calls.positions == [list(range(i * BATCH, (i + 1) * BATCH)) for i in range(ITERS)]
    model = read.runner.model
    assert model.teacher_caches['teacher'].counts == dict(read=ITERS * BATCH, computed=0, written=0)
    assert write.runner.model.teacher_caches['teacher'].counts == dict(
        read=0, computed=ITERS * BATCH, written=ITERS * BATCH)


def test_the_write_run_wrote_a_manifest_and_shards(runs):
    root, *_ = runs
    with open(root / 'cache' / 'manifest.json') as f:
        manifest = json.load(f)
    assert set(manifest) == set(MANIFEST_FIELDS) | set(LAYOUT_FIELDS)
    assert manifest['readouts'] == ['logits'] and manifest['dtype'] == 'float32'
    assert (manifest['batch_size'], manifest['world_size'], manifest['seed']) == (BATCH, 1, 0)
    names = shards(root / 'cache')
    assert len(names) == 1
    rank, world, first, last, rows, _ = SHARD_NAME.match(names[0]).groups()
    assert (int(rank), int(world), int(first), int(last), int(rows)) == (
        0, 1, 0, ITERS * BATCH - 1, ITERS * BATCH)
    # nothing else: no temporary file left behind
    assert sorted(os.listdir(root / 'cache')) == sorted(names + ['manifest.json'])


def test_a_run_longer_than_its_cache_computes_and_appends_the_rest(runs, shapes_data,
                                                                   teacher_checkpoint, tmp_path):
    _, live, *_ = runs
    cache = str(tmp_path / 'cache')
    short = train(tmp_path, 'short', shapes_data, teacher_checkpoint, cache=cache, iters=2)
    assert sorted(short.calls.calls) == [0, 1]
    longer = train(tmp_path, 'longer', shapes_data, teacher_checkpoint, cache=cache)
    assert sorted(longer.calls.calls) == [2, 3]  # the teacher ran for the new iterations only
    assert longer.runner.model.teacher_caches['teacher'].counts == dict(
        read=2 * BATCH, computed=2 * BATCH, written=2 * BATCH)
    assert_same_state(live.state, longer.state)
    assert longer.logged == live.logged
    ranges = [SHARD_NAME.match(name).group('first', 'last', 'rows') for name in shards(cache)]
    assert sorted((int(a), int(b), int(n)) for a, b, n in ranges) == [(0, 7, 8), (8, 15, 8)]
    again = train(tmp_path, 'again', shapes_data, teacher_checkpoint, cache=cache)
    assert again.calls.calls == {}
    assert_same_state(live.state, again.state)


def test_a_shorter_run_reads_a_longer_cache_and_needs_no_disk(runs, shapes_data,
                                                              teacher_checkpoint, tmp_path,
                                                              monkeypatch):
    """The cache's one shard reaches past the run's positions: its rows below them count as
    stored (they used to be counted as missing: the run measured and checked the disk for
    samples it would never write)."""
    root, live, *_ = runs
    usage = namedtuple('usage', 'total used free')
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: usage(100, 100, 0))
    short = train(tmp_path, 'short', shapes_data, teacher_checkpoint, cache=str(root / 'cache'),
                  iters=2)
    assert short.calls.calls == {}
    assert short.runner.model.teacher_caches['teacher'].counts == dict(read=2 * BATCH, computed=0,
                                                           written=0)
    checkpoint = torch.load(live.runner.work_dir + '/iter_2.pth', weights_only=False)
    assert_same_state(checkpoint['state_dict'], short.state)
    assert (f'teacher cache {root / "cache"}: holds the {2 * BATCH} samples of this run; the '
            'teacher will not run in the training steps') in log_text(tmp_path / 'short')[0]


def test_a_resumed_read_run_reads_the_rest_and_ends_as_the_live_run(runs, shapes_data,
                                                                    teacher_checkpoint, tmp_path):
    from kdzoo.runner import build_runner
    root, live, write, _ = runs
    runner = build_runner(config(tmp_path, 'resumed', shapes_data, teacher_checkpoint,
                                 cache=str(root / 'cache')),
                          resume=osp.join(write.runner.work_dir, 'iter_2.pth'))
    calls = TeacherCallsHook()
    runner.register_hook(calls)
    runner.train()
    assert calls.calls == {}
    assert calls.positions == [[8, 9, 10, 11], [12, 13, 14, 15]]
    assert_same_state(live.state, runner.model.state_dict())


def test_another_teacher_checkpoint_stops_before_training(runs, shapes_data, teacher_checkpoint,
                                                          tmp_path):
    root, *_ = runs
    checkpoint = torch.load(teacher_checkpoint, weights_only=False)
    weights = checkpoint['state_dict']
    key = next(k for k, v in weights.items() if v.is_floating_point())
    weights[key] = weights[key].clone()
    weights[key].view(-1)[0] += 1e-3  # one weight
    torch.save(checkpoint, tmp_path / 'changed.pth')
    files = sorted(os.listdir(root / 'cache'))
    info, calls = failed_run(tmp_path, 'changed', shapes_data, str(tmp_path / 'changed.pth'),
                             TeacherCacheError, cache=str(root / 'cache'))
    assert last_line(info) == (f'teacher cache {root / "cache"}: the teacher checkpoint (its '
                               'bytes) differs')
    assert str(info.value).startswith(
        f'The teacher cache in {root / "cache"} was written for another setup: the teacher '
        'checkpoint (its bytes) differs (cache: ')
    assert calls.started == 0 and calls.calls == {}
    assert sorted(os.listdir(root / 'cache')) == files  # nothing written


@pytest.mark.filterwarnings('ignore:.*CUDA is not available')  # the AMP grad scaler, on the CPU
def test_a_cache_written_under_mixed_precision_is_not_read_by_a_float32_run(
        shapes_data, teacher_checkpoint, tmp_path, monkeypatch):
    """MMEngine's AmpOptimWrapper runs the whole step under autocast, the teacher's forward
    included: its readouts are another precision's, and a float32 run reading them would not be
    its live run (the manifest used to leave the step's autocast out: the run read them). On the
    CPU: the wrapper's CUDA check passed over, MMEngine autocasts to bfloat16."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper

    from kdzoo.runner import build_runner
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    cache = str(tmp_path / 'cache')
    path = config(tmp_path, 'amp', shapes_data, teacher_checkpoint, cache=cache, iters=1)
    with open(path, 'a') as f:
        f.write("optim_wrapper = dict(optim_wrapper, type='AmpOptimWrapper')\n")
    build_runner(path).train()
    info, calls = failed_run(tmp_path, 'float32', shapes_data, teacher_checkpoint,
                             TeacherCacheError, cache=cache, iters=1)
    assert last_line(info) == (f"teacher cache {cache}: the teacher's inputs (normalisation, "
                               'autocast) differs')
    assert calls.started == 0


def test_a_run_killed_while_writing_its_shard_leaves_none_and_a_rerun_recomputes(
        runs, shapes_data, teacher_checkpoint, tmp_path, monkeypatch):
    _, live, *_ = runs
    cache = tmp_path / 'cache'
    rename = os.replace

    def killed(source, destination):
        if SHARD_NAME.match(osp.basename(destination)):
            raise OSError('killed between the write and the rename')
        rename(source, destination)  # the manifest
    monkeypatch.setattr(os, 'replace', killed)
    info, _ = failed_run(tmp_path, 'killed', shapes_data, teacher_checkpoint, OSError,
                         cache=str(cache))
    assert str(info.value) == 'killed between the write and the rename'
    monkeypatch.undo()
    # the failed write removed its temporary file; a process killed there leaves one: never read
    assert shards(cache) == [] and not [n for n in os.listdir(cache) if n.endswith('.tmp')]
    (cache / 'shard-r0-w1-000000000000-000000000015-16-0123456789abcdef.pt.99.tmp').write_bytes(
        b'cut')
    rerun = train(tmp_path, 'rerun', shapes_data, teacher_checkpoint, cache=str(cache))
    assert sorted(rerun.calls.calls) == list(range(ITERS))  # computed again
    assert_same_state(live.state, rerun.state)
    assert len(shards(cache)) == 1


def test_a_corrupted_shard_is_an_error_naming_it(runs, shapes_data, teacher_checkpoint, tmp_path):
    root, *_ = runs
    cache = tmp_path / 'cache'
    shutil.copytree(root / 'cache', cache)
    name, = shards(cache)
    data = bytearray((cache / name).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    (cache / name).write_bytes(bytes(data))
    info, calls = failed_run(tmp_path, 'corrupt', shapes_data, teacher_checkpoint,
                             TeacherCacheError, cache=str(cache))
    assert last_line(info) == f'teacher cache {cache}: {name} fails its checksum'
    assert str(info.value).startswith(f'The teacher cache shard {cache / name} is corrupted')
    assert calls.calls == {}


def test_a_cache_larger_than_the_free_disk_stops_before_training(shapes_data, teacher_checkpoint,
                                                                 tmp_path, monkeypatch):
    usage = namedtuple('usage', 'total used free')
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: usage(100, 90, 10))
    info, calls = failed_run(tmp_path, 'full', shapes_data, teacher_checkpoint,
                             TeacherCacheError, cache=str(tmp_path / 'cache'))
    # per sample: its position and index (16 bytes) and 4 float32 logits
    need = ITERS * BATCH * (16 + 4 * 4)
    assert last_line(info) == f'teacher cache {tmp_path / "cache"}: needs {need} B, 10 B free'
    assert str(info.value).startswith(f'The teacher cache would need about {need} B for this '
                                      f'run and the disk of {tmp_path / "cache"} has 10 B free.')
    assert calls.started == 0
    assert shards(tmp_path / 'cache') == []


@pytest.mark.parametrize('storage, bounds', [
    # bounds on (max |KD loss difference|, max |weight difference|) over the 4 iterations;
    # measured: float16 3.2e-4 (of a KD loss about 0.19) and 3.3e-3; the top 2 of 4 classes
    # 3.2e-2 and 6.8e-2
    (dict(dtype='float16'), (2e-3, 2e-2)),
    (dict(topk=2), (0.1, 0.3)),
], ids=['float16', 'top2'])
def test_lossy_storage_differs_from_the_live_run_by_a_small_amount(storage, bounds, runs,
                                                                   shapes_data,
                                                                   teacher_checkpoint, tmp_path):
    _, live, *_ = runs
    cache = dict(dir=str(tmp_path / 'cache'), **storage)
    write = train(tmp_path, 'write', shapes_data, teacher_checkpoint, cache=cache)
    read = train(tmp_path, 'read', shapes_data, teacher_checkpoint, cache=cache)
    # the write run trains on the stored values too: it and every run reading them are one run
    assert_same_state(write.state, read.state) and write.logged == read.logged
    assert read.calls.calls == {}
    difference = max(abs(a['distill.loss_kd'] - b['distill.loss_kd'])
                     for a, b in zip(live.logged[:ITERS], read.logged[:ITERS]))
    weights = max((live.state[k].float() - read.state[k].float()).abs().max().item()
                  for k in live.state)
    assert 0 < difference < bounds[0], difference
    assert 0 < weights < bounds[1], weights


def test_extra_readouts_are_stored_and_a_run_reading_another_tap_is_refused(
        shapes_data, teacher_checkpoint, tmp_path):
    cache = dict(dir=str(tmp_path / 'cache'), readouts=['stage4', 'model.stages.2'])
    train(tmp_path, 'write', shapes_data, teacher_checkpoint, cache=cache, iters=1)
    with open(tmp_path / 'cache' / 'manifest.json') as f:
        assert json.load(f)['readouts'] == ['logits', 'model.stages.2', 'stage4']
    name, = shards(tmp_path / 'cache')
    chunk, = torch.load(tmp_path / 'cache' / name, weights_only=True)
    shapes = [[tuple(leaf.shape) for leaf in leaves] for leaves in chunk['leaves']]
    # the teacher's logits, its third stage's module (64 px inside the model) and its last stage
    assert shapes == [[(BATCH, 4)], [(BATCH, 48, 4, 4)], [(BATCH, 64, 2, 2)]]
    msdcrd = [dict(student='dense_logits', teacher='dense_logits', loss=dict(type='MSDCRDLoss'))]
    info, calls = failed_run(tmp_path, 'other', shapes_data, teacher_checkpoint,
                             TeacherCacheError, cache=cache, items=msdcrd)
    assert last_line(info) == f'teacher cache {tmp_path / "cache"}: the readouts stored differs'
    assert ("the readouts stored differs (cache: ['logits', 'model.stages.2', 'stage4'], this "
            "run: ['dense_logits', 'logits', 'model.stages.2', 'stage4'])") in str(info.value)
    assert calls.started == 0


# -- the cache alone ----------------------------------------------------------------------------
MANIFEST = dict(format=1, kdzoo_version='1.0', task='DistillClassifier', teacher_checkpoint='a1',
                teacher_config='b2', teacher_weights='c3', teacher_inputs='d4', data='e5',
                pipeline='f6', preprocessor='g7', seed=0, readouts=['logits'], dtype='float32',
                topk=None, batch_size=2, world_size=1)
CHANGED = dict(format=2, kdzoo_version='1.1', task='DistillSegmentor', teacher_checkpoint='x',
               teacher_config='x', teacher_weights='x', teacher_inputs='x', data='x',
               pipeline='x', preprocessor='x', seed=1, readouts=['logits', 'stage4'],
               dtype='float16', topk=5)


def test_the_test_manifests_cover_every_field():
    assert set(MANIFEST) == set(MANIFEST_FIELDS) | set(LAYOUT_FIELDS)
    assert set(CHANGED) == set(MANIFEST_FIELDS)


@pytest.mark.parametrize('key', list(MANIFEST_FIELDS))
def test_a_manifest_field_that_differs_is_named(key, tmp_path):
    spec = CacheSpec(str(tmp_path))
    TeacherCache(spec, MANIFEST).open()
    changed = dict(MANIFEST, **{key: CHANGED[key]})
    with pytest.raises(TeacherCacheError) as info:
        TeacherCache(spec, changed).open()
    what = MANIFEST_FIELDS[key]
    assert last_line(info) == f'teacher cache {tmp_path}: {what} differs'
    assert str(info.value).startswith(
        f'The teacher cache in {tmp_path} was written for another setup: {what} differs (cache: '
        f'{MANIFEST[key]!r}, this run: {CHANGED[key]!r}). ')
    assert f'rm -r {tmp_path}' in str(info.value)


@pytest.mark.parametrize('key', LAYOUT_FIELDS)
def test_another_batch_layout_opens_the_cache(key, tmp_path):
    spec = CacheSpec(str(tmp_path))
    TeacherCache(spec, MANIFEST).open()
    cache = TeacherCache(spec, dict(MANIFEST, **{key: 4})).open()
    assert cache.written_by == dict(batch_size=2, world_size=1)


def batch(positions, indices=None, width=8, seed=0):
    """``(indices, positions, inputs, readouts)`` of a made-up batch."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.zeros(len(positions), 3, 8, width)
    readouts = dict(logits=torch.randn(len(positions), 5, generator=generator))
    return list(indices or positions), list(positions), inputs, readouts


def written(directory, *batches):
    """A cache in ``directory`` holding ``batches`` (one shard); returns the spec."""
    spec = CacheSpec(str(directory))
    cache = TeacherCache(spec, MANIFEST).open()
    for indices, positions, inputs, readouts in batches:
        cache.write(indices, positions, inputs, readouts)
    cache.flush()
    return spec


def test_a_written_batch_is_read_back_exactly(tmp_path):
    first, second = batch([0, 1]), batch([2, 3], seed=1)
    spec = written(tmp_path, first, second)
    cache = TeacherCache(spec, MANIFEST).open()
    stored = cache.read([1, 2], [1, 2], first[2])  # rows of two stored batches
    expected = torch.stack([first[3]['logits'][1], second[3]['logits'][0]])
    assert torch.equal(stored['logits'], expected)
    assert cache.read([4, 5], [4, 5], first[2]) is None  # not stored


def test_a_write_killed_before_its_rename_leaves_no_shard(tmp_path, monkeypatch):
    spec = CacheSpec(str(tmp_path))
    cache = TeacherCache(spec, MANIFEST).open()
    indices, positions, inputs, readouts = batch([0, 1])
    cache.write(indices, positions, inputs, readouts)

    def killed(source, destination):
        raise OSError('killed between the write and the rename')
    monkeypatch.setattr(os, 'replace', killed)
    with pytest.raises(OSError, match='killed'):
        cache.flush()
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ['manifest.json']  # the temporary file removed
    (tmp_path / 'shard-r0-w1-000000000000-000000000001-2-0123456789abcdef.pt.99.tmp').write_bytes(
        b'cut')  # what a process killed there leaves
    rerun = TeacherCache(spec, MANIFEST).open()
    assert rerun.shards == [] and rerun.read(indices, positions, inputs) is None
    rerun.write(indices, positions, inputs, readouts)  # computed again, stored
    rerun.flush()
    assert len(shards(tmp_path)) == 1
    stored = TeacherCache(spec, MANIFEST).open().read(indices, positions, inputs)
    assert torch.equal(stored['logits'], readouts['logits'])


def test_a_corrupted_shard_fails_its_checksum(tmp_path):
    spec = written(tmp_path, batch([0, 1]))
    name, = shards(tmp_path)
    data = bytearray((tmp_path / name).read_bytes())
    data[-1] ^= 0xff
    (tmp_path / name).write_bytes(bytes(data))
    indices, positions, inputs, _ = batch([0, 1])
    with pytest.raises(TeacherCacheError) as info:
        TeacherCache(spec, MANIFEST).open().read(indices, positions, inputs)
    assert last_line(info) == f'teacher cache {tmp_path}: {name} fails its checksum'
    assert str(info.value).startswith(f'The teacher cache shard {tmp_path / name} is corrupted: '
                                      'the sha256 of its bytes is not the one its name records')


def test_another_sample_at_a_stored_position_is_an_error(tmp_path):
    spec = written(tmp_path, batch([0, 1]))
    _, _, inputs, _ = batch([0, 1])
    with pytest.raises(TeacherCacheError) as info:
        TeacherCache(spec, MANIFEST).open().read([0, 7], [0, 1], inputs)
    assert last_line(info) == f'teacher cache {tmp_path}: position 1 holds another sample'
    assert str(info.value).startswith('The teacher cache holds data set sample 1 at stream '
                                      'position 1, this run loads sample 7 there')


def test_a_batch_of_another_input_shape_is_computed(tmp_path):
    spec = written(tmp_path, batch([0, 1]))
    indices, positions, wider, _ = batch([0, 1], width=16)  # padded to another size
    assert TeacherCache(spec, MANIFEST).open().read(indices, positions, wider) is None


@pytest.mark.parametrize('value, message', [
    (dict(dir='c', dtpye='float16'), "distill_cfg.teacher.cache: unknown keys ['dtpye']; "
                                     "allowed keys ['dir', 'dtype', 'topk', 'readouts']"),
    (dict(dir='c', dtype='fp16'), "distill_cfg.teacher.cache.dtype must be one of ['float32', "
                                  "'float16', 'bfloat16'], got 'fp16'"),
    (dict(dir='c', topk=0), 'distill_cfg.teacher.cache.topk must be a positive int or None, '
                            'got 0'),
    (dict(dir='c', readouts='x'), 'distill_cfg.teacher.cache.readouts must be a list of teacher '
                                  "taps, got 'x'"),
    (dict(dtype='float16'), 'distill_cfg.teacher.cache.dir must be a folder path, got None'),
])
def test_wrong_cache_values_are_named(value, message):
    with pytest.raises(ValueError) as info:
        cache_spec(value)
    assert str(info.value) == message


def test_a_folder_alone_is_a_float32_cache():
    assert cache_spec('c') == CacheSpec('c', 'float32', None, ())
    assert cache_spec('c').exact and not cache_spec(dict(dir='c', topk=5)).exact


@pytest.mark.parametrize('shape', [(6, 10), (2, 10, 3, 4)], ids=['logits', 'dense_logits'])
def test_topk_keeps_the_top_probabilities_and_spreads_the_rest(shape):
    k = 3
    logits = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 3
    values, indices, fill = topk_compress(logits, k)
    full = topk_expand(values, indices, fill, shape[1], torch.float32)
    top = logits.topk(k, dim=1).indices
    assert torch.equal(full.gather(1, top), logits.gather(1, top))  # the k largest, exact
    p, q = logits.softmax(1), full.softmax(1)
    torch.testing.assert_close(q.gather(1, top), p.gather(1, top), rtol=1e-5, atol=1e-7)
    rest = torch.ones_like(p, dtype=torch.bool).scatter_(1, top, False)
    spread = (1 - p.gather(1, top).sum(1, keepdim=True)) / (shape[1] - k)
    torch.testing.assert_close(q, torch.where(rest, spread.expand_as(p), p), rtol=1e-5,
                               atol=1e-7)


def test_a_dry_run_of_a_cached_config_computes_its_step_live(shapes_data, teacher_checkpoint,
                                                              tmp_path, capsys):
    """tools/train.py --dry-run of a config with a cache: the batch's stream keys are taken out
    (they reached describe_step as keyword arguments), the step runs live, nothing is stored."""
    from tools.train import main
    path = config(tmp_path, 'dry', shapes_data, teacher_checkpoint,
                  cache=str(tmp_path / 'cache'))
    main([path, '--dry-run'])
    assert 'kd' in capsys.readouterr().out
    assert not osp.exists(tmp_path / 'cache')
