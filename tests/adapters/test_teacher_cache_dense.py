"""The teacher-output cache on the segmentation and detection quick-start configs (issue 25 point
7; classification: tests/tools/test_teacher_cache.py): a run with a new cache (write) and one
with the same cache (read) train the live run's student bit for bit, and the read run's steps
never run the teacher. Detection with multi-scale inputs: images of two sizes padded per batch,
so batches of one position can have several input shapes. A data preprocessor's batch augments
(randomness outside the seeded data stream) are refused."""
import os

import pytest
import torch
from cache_probes import TeacherCallsHook
from test_mmdet_train import det_data, options_for, unformatted_config_dumps  # noqa: F401
from test_teacher_check_dense import DET, SEG, seg_data, seg_options  # noqa: F401

from kdzoo.teacher_cache import SHARD_NAME

ITERS = 3
BATCH = 2
# images resized to 64, 96 or 128 px, padded to the batch's largest (the data preprocessor's
# divisor is 32): batches of 96 x 96 and of 128 x 128 inputs
MULTI_SCALE = dict(type='RandomChoiceResize', scales=[(64, 64), (96, 96), (128, 128)],
                   keep_ratio=True)


def options_of(task, data, tmp_path):
    if task == 'seg':
        return SEG, dict(seg_options(data, tmp_path), **{'train_cfg.max_iters': ITERS})
    options = options_for(DET, data, tmp_path)
    pipeline = options['train_dataloader']['dataset']['pipeline']
    assert pipeline[2]['type'] == 'Resize'
    pipeline[2] = MULTI_SCALE
    options['train_cfg']['max_iters'] = ITERS
    return DET, options


def train(config, options, work_dir, cache=None):
    """``(runner, TeacherCallsHook, student state dict)`` of a run."""
    from kdzoo.runner import build_runner
    options = dict(options, **{'distill_cfg.teacher_check': False})
    if cache is not None:
        options['distill_cfg.teacher.cache'] = cache
    runner = build_runner(config, cfg_options=options, work_dir=str(work_dir))
    calls = TeacherCallsHook()
    runner.register_hook(calls)
    runner.train()
    state = {k: v.detach().clone() for k, v in runner.model.student.state_dict().items()}
    return runner, calls, state


@pytest.mark.filterwarnings('ignore:distill_cfg.teacher has no checkpoint')
@pytest.mark.parametrize('task', ['seg', 'det'])
def test_write_and_read_runs_train_the_live_student(task, request, tmp_path):
    data = request.getfixturevalue('seg_data' if task == 'seg' else 'det_data')
    config, options = options_of(task, data, tmp_path)
    cache = str(tmp_path / 'cache')
    _, live, expected = train(config, options, tmp_path / 'live')
    _, write, written = train(config, options, tmp_path / 'write', cache)
    read_runner, read, state = train(config, options, tmp_path / 'read', cache)
    assert sorted(live.calls) == sorted(write.calls) == list(range(ITERS))
    assert read.started == ITERS and read.calls == {}
    assert read_runner.model.teacher_caches['teacher'].counts == dict(
        read=ITERS * BATCH, computed=0, written=0)
    for other in (written, state):
        assert not [k for k in expected if not torch.equal(expected[k], other[k])]
    name, = [n for n in os.listdir(cache) if SHARD_NAME.match(n)]
    chunks = torch.load(os.path.join(cache, name), weights_only=True)
    shapes = {tuple(chunk['input_shape']) for chunk in chunks}
    if task == 'det':
        # padding differs from batch to batch (96 or 128 px)
        assert shapes == {(3, 96, 96), (3, 128, 128)}, shapes
        # cls_scores and neck: one map per FPN level
        assert [len(leaves) for leaves in chunks[0]['leaves']] == [5, 5]
    else:
        assert shapes == {(3, 64, 64)}


@pytest.mark.filterwarnings('ignore:distill_cfg.teacher has no checkpoint')
def test_batch_augments_are_refused(det_data, tmp_path):  # noqa: F811
    from kdzoo.runner import build_runner
    config, options = options_of('det', det_data, tmp_path)
    options['model.data_preprocessor.batch_augments'] = [dict(
        type='BatchSyncRandomResize', random_size_range=(96, 128), size_divisor=32, interval=1)]
    options['distill_cfg.teacher.cache'] = str(tmp_path / 'cache')
    options['distill_cfg.teacher_check'] = False
    runner = build_runner(config, cfg_options=options, work_dir=str(tmp_path / 'work'))
    calls = TeacherCallsHook()
    runner.register_hook(calls)
    with pytest.raises(ValueError) as info:
        runner.train()
    assert str(info.value).startswith(
        "distill_cfg.teacher.cache: the data preprocessor's batch_augments "
        "['BatchSyncRandomResize'] draw their randomness in the training step")
    assert str(info.value).splitlines()[-1] == (
        f"teacher cache {tmp_path / 'cache'}: not opened (batch_augments "
        "['BatchSyncRandomResize'])")
    assert calls.started == 0
    assert not os.path.exists(tmp_path / 'cache')
