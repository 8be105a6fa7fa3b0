"""tools/cache_teacher.py: a cache filled ahead of training serves the training run of the same
config whole (the teacher never runs in its steps) and that run is bit-identical to the live one;
a shorter fill leaves the rest to the run; wrong inputs stop before anything is built."""
import os
import os.path as osp

import pytest
import torch
from tools_helpers import TEACHER, runner_config, write_config

KD = [dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='kd')]
ITERS = 10  # batches of 4 from 32 images: the run takes a second pass (epoch) over the data


@pytest.fixture(scope='module')
def make_config(shapes_data, teacher_checkpoint, tmp_path_factory):
    """``make_config(name, cache=None, **changes)``: an augmented KD config of ITERS iterations
    (no teacher check: the teacher runs in the training steps only), ``changes`` replacing
    top-level keys."""
    root = tmp_path_factory.mktemp('cache_teacher')

    def make(name, cache=None, **changes):
        teacher = dict(config=TEACHER, checkpoint=teacher_checkpoint)
        if cache:
            teacher['cache'] = cache
        cfg = runner_config(shapes_data, root / name, distill_cfg=dict(
            teacher=teacher, teacher_check=False, losses=KD), max_iters=ITERS,
            checkpoint_interval=1000)
        cfg['train_dataloader']['dataset']['augment'] = True
        cfg.update(changes)
        return write_config(root / f'{name}.py', cfg), root
    return make


def train(config, options=None):
    """``(student state dict, forward calls of teacher modules, cache counts)`` of a
    tools/train.py run (its config runs no teacher check: only the training steps call it)."""
    from kdzoo.runner import build_runner
    runner = build_runner(config, cfg_options=options)
    calls = []
    for module in runner.model.teacher.modules():
        module.register_forward_pre_hook(lambda *args: calls.append(1))
    runner.train()
    cache = runner.model.teacher_caches.get('teacher')
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return state, len(calls), cache and dict(cache.counts)


@pytest.fixture(scope='module')
def live(make_config):
    return train(make_config('live')[0])


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_filled_cache_serves_the_whole_run_bit_identical_to_live(make_config, live, capsys):
    from tools.cache_teacher import main
    config, root = make_config('filled')
    cache = str(root / 'cache_filled')
    main([config, '--cache', cache, '--work-dir', str(root / 'fill_logs')])
    out = capsys.readouterr().out
    assert f'seed 0, {ITERS} iterations -> {cache}' in out
    assert f'0 samples read, {ITERS * 4} computed by the teacher, {ITERS * 4} stored' in out
    assert not list((root / 'fill_logs').rglob('*.pth'))  # nothing trained or saved
    state, calls, counts = train(config, {'distill_cfg.teacher.cache': cache})
    assert calls == 0 and counts == dict(read=ITERS * 4, computed=0, written=0)
    assert_identical(state, live[0])
    assert live[1] > 0 and live[2] is None  # the live run's teacher ran


def test_a_shorter_fill_leaves_the_rest_to_the_run_which_stays_identical(make_config, live,
                                                                         capsys):
    from tools.cache_teacher import main
    config, root = make_config('shorter')
    cache = str(root / 'cache_shorter')
    main([config, '--cache', cache, '--iters', '4', '--work-dir', str(root / 'fill_logs')])
    assert '0 samples read, 16 computed by the teacher, 16 stored' in capsys.readouterr().out
    state, calls, counts = train(config, {'distill_cfg.teacher.cache': cache})
    assert calls > 0 and counts == dict(read=16, computed=ITERS * 4 - 16,
                                        written=ITERS * 4 - 16)
    assert_identical(state, live[0])


def test_an_epoch_based_run_is_filled_pass_by_pass(make_config):
    from tools.cache_teacher import main
    epochs = dict(train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=1000),
                  log_processor=dict(by_epoch=True))
    config, root = make_config('epochs', **epochs)
    live_state = train(config)[0]
    cache = str(root / 'cache_epochs')
    main([config, '--cache', cache, '--work-dir', str(root / 'fill_logs')])
    state, calls, counts = train(config, {'distill_cfg.teacher.cache': cache})
    # 2 epochs of 8 batches: a sampler left at one epoch would deal the second pass another order
    # (other samples at its positions: an error) or the same augmentations (not read)
    assert calls == 0 and counts == dict(read=64, computed=0, written=0)
    assert_identical(state, live_state)


def manifest(folder):
    import json
    with open(osp.join(folder, 'manifest.json')) as f:
        return json.load(f)


def test_seeds_fill_one_cache_each_and_the_configs_storage_is_kept(make_config, capsys):
    from tools.cache_teacher import main
    config, root = make_config('seeds', cache=dict(dir='unused', dtype='float16', topk=2))
    main([config, '--cache', str(root / 'caches'), '--seeds', '1,2', '--iters', '1',
          '--work-dir', str(root / 'fill_logs')])
    assert sorted(os.listdir(root / 'caches')) == ['seed1', 'seed2']
    for seed in (1, 2):
        stored = manifest(root / 'caches' / f'seed{seed}')
        assert (stored['seed'], stored['dtype'], stored['topk']) == (seed, 'float16', 2)
    assert not osp.exists('unused')
    out = capsys.readouterr().out
    for seed in (1, 2):
        assert (f'cache_teacher: teacher cache {root}/caches/seed{seed}: 0 samples read, 4 '
                'computed by the teacher, 4 stored; ') in out


@pytest.mark.parametrize('case, says', [
    ('alone', 'has no distill_cfg: a teacher-output cache needs a distilling config'),
    ('no_cache', 'no cache folder: give --cache DIR, or set distill_cfg.teacher.cache in'),
    ('no_seed', 'sets no randomness.seed, so every run draws its own and no cache could serve '
                'it: give --seeds'),
    ('bad_cache', "distill_cfg.teacher.cache.dtype must be one of ['float32', 'float16', "
                  "'bfloat16'], got 'int8'"),
])
def test_wrong_inputs_stop_before_anything_is_built(make_config, shapes_data, case, says,
                                                    monkeypatch):
    from kdzoo.commands import cache_teacher
    monkeypatch.setattr(cache_teacher, 'build_runner', None)  # never reached
    config, root = make_config(f'wrong_{case}', **dict(
        no_seed=dict(randomness=dict(deterministic=False)),
        bad_cache=dict()).get(case, {}))
    if case == 'alone':
        config = write_config(root / 'alone.py', runner_config(shapes_data, root / 'alone'))
    argv = [config] + ([] if case in ('no_cache', 'bad_cache') else ['--cache', 'x'])
    if case == 'bad_cache':
        argv += ['--cfg-options', 'distill_cfg.teacher.cache.dtype=int8',
                 'distill_cfg.teacher.cache.dir=x']
    with pytest.raises(SystemExit) as err:
        cache_teacher.main(argv)
    assert says in str(err.value)


def test_iters_and_epochs_together_are_refused(capsys):
    from tools.cache_teacher import main
    with pytest.raises(SystemExit):
        main(['any.py', '--iters', '2', '--epochs', '1'])
    assert 'argument --epochs: not allowed with argument --iters' in capsys.readouterr().err


def test_an_exact_cache_leaves_the_fingerprint_a_lossy_one_changes_it(make_config):
    from kdzoo.experiments.runs import config_sha, resolved_config
    config, root = make_config('fingerprint')

    def sha(cache=None):
        options = {} if cache is None else {'distill_cfg.teacher.cache': cache}
        return config_sha(config, options)

    live = sha()
    assert sha(str(root / 'a')) == sha(dict(dir=str(root / 'b'), readouts=['stage3'])) == live
    assert sha(dict(dir='a', dtype='float32', topk=None)) == live
    half = sha(dict(dir='a', dtype='float16'))
    assert half != live and half == sha(dict(dir='b', dtype='float16', readouts=['stage2']))
    assert sha(dict(dir='a', dtype='bfloat16')) not in (live, half)
    top5 = sha(dict(dir='a', topk=5))
    assert top5 not in (live, half) and top5 == sha(dict(dir='b', topk=5, readouts=['stage4']))
    assert sha(dict(dir='a', topk=10)) != top5
    teacher = resolved_config(config, {'distill_cfg.teacher.cache': dict(
        dir='a', dtype='float16', topk=5, readouts=['stage4'])})['distill_cfg']['teacher']
    assert teacher['cache'] == dict(dtype='float16', topk=5)


def test_an_exact_cache_of_a_config_in_the_explicit_form_leaves_its_fingerprint(make_config):
    from kdzoo.experiments.runs import config_sha
    same = {'work_dir': 'work'}  # each config file names its own
    explicit = dict(type='kdzoo.DistillClassifier', student=dict(type='TimmClassifier'),
                    distill_cfg=dict(teacher=dict(config=TEACHER), losses=KD))
    plain = make_config('explicit_plain', model=explicit)[0]
    cached = dict(explicit, distill_cfg=dict(explicit['distill_cfg'], teacher=dict(
        config=TEACHER, cache='somewhere')))
    plain = config_sha(plain, same)
    assert config_sha(make_config('explicit_cached', model=cached)[0], same) == plain
    lossy = dict(cached, distill_cfg=dict(cached['distill_cfg'], teacher=dict(
        config=TEACHER, cache=dict(dir='x', dtype='float16'))))
    assert config_sha(make_config('explicit_lossy', model=lossy)[0], same) != plain


def test_runs_storing_the_same_readouts_share_a_cache_whatever_their_items_order(
        shapes_data, tmp_path):
    """Two arms of a shared cache, as the plug-and-play matrix sets them: the same stored
    readouts (the union of their items' teacher taps), their items reading them in another
    order."""
    from tools_helpers import SEED_LOSSES

    from kdzoo.hooks.teacher_cache import run_manifest
    from kdzoo.runner import build_runner
    readouts = ['dense_logits', 'logits', 'stage3', 'stage4']
    manifests = []
    for loss in ('kd', 'lfcc'):
        cfg = runner_config(shapes_data, tmp_path / loss, distill_cfg=dict(
            teacher=dict(config=TEACHER, cache=dict(dir=str(tmp_path / 'c'), readouts=readouts)),
            teacher_check=False, **SEED_LOSSES[loss]))
        runner = build_runner(write_config(tmp_path / f'{loss}.py', cfg))
        manifests.append(run_manifest(runner, runner.model, 'teacher',
                                      runner.model.cache_specs['teacher']))
    assert manifests[0]['readouts'] == manifests[1]['readouts']
