"""Schedules (issue 23, point 6): ``--cfg-options train_cfg.max_iters=N`` rescales an
iteration-based schedule and validation interval as ``tools/compare.py --iters`` does (one
implementation, kdzoo/schedule.py) with a line saying so, and what the user sets is kept; a
distill item whose ``warmup_iters`` is not below ``max_iters`` is an error naming both;
``--dry-run`` measures the loss ratios at the items' full weight and says so."""
import re

import pytest
from tools_helpers import SEED_LOSSES, log_text, runner_config, write_config

from kdzoo.runner import build_runner, load_config

ONE_CYCLE = dict(type='OneCycleLR', eta_max=0.05, total_steps=500, pct_start=0.1, by_epoch=False)
RESCALED = ('train_cfg.max_iters 500 -> 2: rescaled param_scheduler OneCycleLR total_steps 500 '
            '-> 2, val_interval 500 -> 2 (give param_scheduler / train_cfg.val_interval in '
            '--cfg-options to set them yourself)\n')


@pytest.fixture
def one_cycle_config(shapes_data, tmp_path):
    """The student alone on a 500-iteration OneCycleLR schedule validating once, at the end (the
    quick-start configs' schedule)."""
    cfg = runner_config(shapes_data, tmp_path / 'work', max_iters=500)
    cfg['train_cfg']['val_interval'] = 500
    cfg['param_scheduler'] = [ONE_CYCLE]
    return write_config(tmp_path / 'one_cycle.py', cfg)


def test_a_shorter_run_rescales_the_schedule_and_validates(one_cycle_config, capsys):
    """Without the rescaling the 2-iteration run kept total_steps=500 (its learning rate never
    left the warm-up) and val_interval=500 (no validation), without a word."""
    from tools.train import main
    runner = main([one_cycle_config, '--cfg-options', 'train_cfg.max_iters=2'])
    assert capsys.readouterr().out.startswith(RESCALED)
    assert runner.cfg.param_scheduler == [dict(ONE_CYCLE, total_steps=2, begin=0)]
    assert runner.cfg.train_cfg.val_interval == 2
    assert runner.iter == 2
    # the one cycle ran to its end (from 0.002 up to 0.05 and down to 2e-7), not 2 steps of 500
    assert runner.optim_wrapper.get_lr()['lr'][0] == pytest.approx(0.05 / 25 / 1e4)
    assert 'Iter(val) [2/2]' in log_text(runner.work_dir)[-1]


def test_the_same_schedule_as_compare(one_cycle_config):
    """One implementation: the schedule of ``tools/train.py`` with ``train_cfg.max_iters=2`` is
    the one ``tools/compare.py --iters 2`` trains with (kdzoo.experiments.runs.budget_options)."""
    from kdzoo.experiments.runs import budget_options
    budget = budget_options(load_config(one_cycle_config), iters=2)
    rescaled = load_config(one_cycle_config, {'train_cfg.max_iters': 2})
    assert rescaled.param_scheduler == budget['param_scheduler']


@pytest.mark.parametrize('options, schedule, interval, line', [
    ({'train_cfg.val_interval': 1}, dict(ONE_CYCLE, total_steps=2, begin=0), 1,
     'train_cfg.max_iters 500 -> 2: rescaled param_scheduler OneCycleLR total_steps 500 -> 2 '
     '(give param_scheduler / train_cfg.val_interval in --cfg-options to set them yourself)\n'),
    ({'param_scheduler.0.total_steps': 3}, dict(ONE_CYCLE, total_steps=3), 2,
     'train_cfg.max_iters 500 -> 2: rescaled val_interval 500 -> 2 (give param_scheduler / '
     'train_cfg.val_interval in --cfg-options to set them yourself)\n'),
    ({'param_scheduler': [], 'train_cfg.val_interval': 7}, None, 7, ''),
], ids=['own-val-interval', 'own-schedule', 'both-own'])
def test_what_the_user_sets_is_kept(one_cycle_config, capsys, options, schedule, interval, line):
    cfg = load_config(one_cycle_config, {'train_cfg.max_iters': 2, **options})
    assert capsys.readouterr().out == line
    assert cfg.param_scheduler == ([schedule] if schedule else [])
    assert cfg.train_cfg.val_interval == interval


def test_the_config_s_own_length_changes_nothing(one_cycle_config, capsys):
    cfg = load_config(one_cycle_config, {'train_cfg.max_iters': 500})
    assert cfg.param_scheduler == [ONE_CYCLE] and capsys.readouterr().out == ''


@pytest.mark.parametrize('iters', [0, -3])
def test_a_length_below_one_is_refused(one_cycle_config, iters):
    with pytest.raises(ValueError, match=re.escape(
            f'train_cfg.max_iters must be a positive integer, got {iters}')):
        load_config(one_cycle_config, {'train_cfg.max_iters': iters})


def kd_with_warmup(warmup_iters, weight=1.0):
    return dict(losses=[dict(SEED_LOSSES['kd']['losses'][0], warmup_iters=warmup_iters,
                             weight=weight)])


@pytest.mark.parametrize('warmup', [2, 500])
def test_a_warmup_as_long_as_the_run_is_refused(distill_config, warmup):
    """The item would never train at its weight (it ramps up over the whole run)."""
    from tools.train import main
    config, work_dir = distill_config(f'warmup_{warmup}', kd_with_warmup(warmup))
    message = (f"distill item 0 ('kd'): warmup_iters {warmup} >= max_iters 2: the item never "
               'reaches its weight 1 in this run; set warmup_iters below max_iters (e.g. '
               '--cfg-options distill_cfg.losses.0.warmup_iters=1) or train longer')
    for argv in ([config, '--dry-run'], [config]):
        with pytest.raises(ValueError, match='^' + re.escape(message) + '$'):
            main(argv)
    assert not work_dir.exists() or not list(work_dir.glob('*.pth'))


def test_a_warmup_shorter_than_the_run_trains(distill_config):
    config, _ = distill_config('warmup_ok', kd_with_warmup(1))
    assert build_runner(config) is not None


def dry_run_ratio(distill_config, name, items, capsys):
    from tools.train import main
    config, _ = distill_config(name, items, max_iters=1000)
    main([config, '--dry-run'])
    out = capsys.readouterr().out
    ratio = re.search(r'distill.ratio_kd = (\S+)', out)
    return float(ratio.group(1)), out


def test_dry_run_ratio_is_at_the_full_weight(distill_config, capsys):
    """With a 500-iteration warm-up the dry run measured the ratio at 1/500 of the weight and
    advised a weight 500 times too large."""
    full, _ = dry_run_ratio(distill_config, 'dry_full', kd_with_warmup(0, weight=1e6), capsys)
    ramped, out = dry_run_ratio(distill_config, 'dry_ramped', kd_with_warmup(500, weight=1e6),
                                capsys)
    assert ramped == pytest.approx(full, rel=1e-5)
    assert ('  losses and ratios at full weight: the step is taken as iteration 501, after every '
            'warm-up (warmup_iters up to 500; at iteration 1 an item weighs 1 / warmup_iters of '
            'its weight)\n') in out
    assert '(weight 1e+06, warmup_iters 500)' in out
    assert "warning: distill item 'kd'" in out  # the weight 1e6 is still far off


def test_an_epoch_based_schedule_is_not_rescaled_silently(shapes_data, tmp_path):
    cfg = runner_config(shapes_data, tmp_path / 'work', max_iters=500)
    cfg['param_scheduler'] = [dict(type='MultiStepLR', milestones=[2], by_epoch=True)]
    config = write_config(tmp_path / 'epoch_schedule.py', cfg)
    with pytest.raises(ValueError, match='^' + re.escape(
            "the schedule must be iteration-based to be rescaled to 2 iterations, got {'type': "
            "'MultiStepLR', 'milestones': [2], 'by_epoch': True}; keep the config's own length "
            '(no --iters, no train_cfg.max_iters override), give an iteration-based schedule '
            '(by_epoch=False) or set param_scheduler yourself') + '$'):
        load_config(config, {'train_cfg.max_iters': 2})


def test_an_epoch_based_run_s_length_counts_its_iterations(shapes_data, teacher_checkpoint,
                                                           tmp_path):
    """1 epoch of 32 training images in batches of 4: 8 iterations, the length of the
    warm-up."""
    from tools_helpers import TEACHER
    distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint),
                       **kd_with_warmup(8))
    cfg = runner_config(shapes_data, tmp_path / 'work', distill_cfg=distill_cfg)
    cfg['train_cfg'] = dict(type='EpochBasedTrainLoop', max_epochs=1)
    config = write_config(tmp_path / 'epochs.py', cfg)
    with pytest.raises(ValueError, match=re.escape(
            "distill item 0 ('kd'): warmup_iters 8 >= max_iters 8: the item never reaches its "
            'weight 1 in this run;')):
        build_runner(config)


def test_a_resumed_run_says_its_schedule_comes_from_the_checkpoint(one_cycle_config, capsys):
    """MMEngine restores the schedulers' state (total_steps included) from the resume checkpoint
    over the config's: a rescaled schedule would be replaced, so it is not claimed."""
    cfg = load_config(one_cycle_config, {'train_cfg.max_iters': 2}, resume=True)
    assert capsys.readouterr().out == (
        'train_cfg.max_iters 500 -> 2: rescaled val_interval 500 -> 2; param_scheduler not '
        "rescaled: --resume restores the schedulers' state, their length included, from the "
        'checkpoint (give param_scheduler / train_cfg.val_interval in --cfg-options to set them '
        'yourself)\n')
    assert cfg.param_scheduler == [ONE_CYCLE] and cfg.train_cfg.val_interval == 2


def test_a_onecycle_schedule_rescaled_to_a_one_step_warm_up_runs():
    """The quick start's OneCycleLR (pct_start 0.1) over 10 iterations: a warm-up of exactly one
    step, on which MMEngine's scheduler divided by zero at the first step."""
    import torch
    from mmengine.config import Config
    from mmengine.optim.scheduler import OneCycleLR

    from kdzoo.schedule import rescaled_schedule
    cfg = Config(dict(train_cfg=dict(max_iters=500), param_scheduler=[dict(
        type='OneCycleLR', eta_max=0.1, total_steps=500, pct_start=0.1, by_epoch=False)]))
    (scheduler,) = rescaled_schedule(cfg, 10)
    assert scheduler['total_steps'] == 10 and scheduler['pct_start'] == 1.001 / 10
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    options = {k: v for k, v in scheduler.items() if k != 'type'}
    onecycle = OneCycleLR(optimizer, **options)
    for _ in range(10):
        optimizer.step()
        onecycle.step()
