"""The teacher-output cache in 2 processes (issue 25 point 4; tools/dist_train.sh on the CPU, as
tests/tools/test_ddp.py launches it): a cache written by a 1-process run of batch 4 serves a
2-process run of batch 2 per process over the same iterations — each rank reads the positions it
is dealt (the data set index stored at each is checked on reading) and its steps never run the
teacher — and the iteration past the cache is computed by both ranks, each writing its own
shard."""
import json
import os

from cache_probes import TeacherCallsHook
from test_ddp import run
from tools_helpers import REPO, TEACHER, runner_config, write_config

from kdzoo.teacher_cache import SHARD_NAME

ITEMS = [dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='kd')]
CACHED = 2  # iterations the 1-process run writes; the 2-process run trains one more


def kd_config(root, data, checkpoint, cache, batch_size, iters, out=None):
    teacher = dict(config=TEACHER, checkpoint=checkpoint, cache=cache)
    cfg = runner_config(data, root / 'work', max_iters=iters,
                        distill_cfg=dict(teacher=teacher, teacher_check=False, losses=ITEMS))
    cfg['train_dataloader']['batch_size'] = batch_size
    cfg['train_dataloader']['dataset'].update(augment=True)
    if out is not None:
        cfg['custom_imports']['imports'].append('cache_probes')
        cfg['custom_hooks'] = [dict(type='TeacherCallsHook', out=str(out))]
    cfg['env_cfg'] = dict(cudnn_benchmark=False)  # the backend follows the device: gloo
    return write_config(root / 'kd.py', cfg)


def test_a_one_process_cache_serves_two_processes(shapes_data, teacher_checkpoint, tmp_path):
    from kdzoo.runner import build_runner
    cache = str(tmp_path / 'cache')
    os.makedirs(tmp_path / 'one')
    runner = build_runner(kd_config(tmp_path / 'one', shapes_data, teacher_checkpoint, cache, 4,
                                    CACHED))
    one = TeacherCallsHook()
    runner.register_hook(one)
    runner.train()
    assert one.positions == [[0, 1, 2, 3], [4, 5, 6, 7]]

    two = tmp_path / 'two'
    os.makedirs(two / 'out')
    config = kd_config(two, shapes_data, teacher_checkpoint, cache, 2, CACHED + 1, two / 'out')
    output = run(['bash', 'tools/dist_train.sh', config, '2'], two, 2,
                 PYTHONPATH=os.pathsep.join([os.path.join(REPO, 'tests'),
                                             os.path.join(REPO, 'tests', 'tools')]))
    ranks = []
    for rank in (0, 1):
        with open(two / 'out' / f'rank{rank}.json') as f:
            ranks.append(json.load(f))
    for rank, record in enumerate(ranks):
        assert record['started'] == CACHED + 1
        assert record['calls'] == [CACHED], rank  # the teacher ran past the cache only
        # rank r is dealt the positions r, r + 2, ... of the 1-process order
        assert record['positions'] == [[4 * i + rank, 4 * i + rank + 2]
                                       for i in range(CACHED + 1)]
        assert record['counts'] == dict(read=2 * CACHED, computed=2, written=2), rank
    for i in range(CACHED):
        assert sorted(ranks[0]['positions'][i] + ranks[1]['positions'][i]) == one.positions[i]
    assert (f'teacher cache {cache}: written by 1 process(es) x batch 4, read by 2 x 2: the '
            'same samples at the same positions') in output
    assert f'teacher cache {cache}: {2 * CACHED} samples read, 2 computed by the teacher, 2 ' \
           'stored' in output  # rank 0's summary (rank 1 logs errors only)
    written = sorted(tuple(int(g) for g in SHARD_NAME.match(name).groups()[:5])
                     for name in os.listdir(cache) if SHARD_NAME.match(name))
    # (rank, world size, first position, last position, rows)
    assert written == [(0, 1, 0, 7, 8), (0, 2, 8, 10, 2), (1, 2, 9, 11, 2)]
