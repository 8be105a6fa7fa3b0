"""tools/compare.py: the paired verdict. Both arms of a seed start from the same student and see
the same augmented batches (even when the distilled arm draws random numbers of its own), a
rerun runs only what is missing and leaves finished files unchanged, missing inputs are named
with the command that makes them, and the smoke run works for cls, seg and det."""
import csv
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from tools_helpers import REPO, STUDENT, TEACHER, runner_config, write_config

from kdzoo.experiments.rows import read_rows
from kdzoo.experiments.stats import paired_summary, t_quantile


def rows_of(work_dir):
    return read_rows(osp.join(work_dir, 'compare.csv'))


# --- statistics ---------------------------------------------------------------------------------
@pytest.mark.parametrize('df, expected', [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622),
                                          (30, 2.0423), (120, 1.9799)])
def test_t_quantile_matches_the_published_table(df, expected):
    assert abs(t_quantile(0.975, df) - expected) < 1e-3


def test_paired_summary_interval_and_verdicts():
    s = paired_summary([1.0, 2.0, 3.0])
    half = 4.3027 * 1.0 / 3 ** 0.5
    assert s.mean == 2.0 and s.std == 1.0 and abs(s.low - (2 - half)) < 1e-3
    assert s.verdict == 'no clear effect'  # 2 - 2.48 < 0
    assert paired_summary([2.0, 2.5, 3.0]).verdict == 'helped'
    assert paired_summary([-2.0, -2.5, -3.0]).verdict == 'hurt'
    assert paired_summary([5.0]).verdict == 'one seed: cannot tell'


# --- classification: pairing, resume, unchanged files -----------------------------------------
@pytest.fixture(scope='module')
def cls_config(shapes_data, teacher_checkpoint, tmp_path_factory):
    """A distilling config with augmentation on and a distillation loss that draws from the
    global random stream (DFRA sampling 2 of 4 rows): the distilled arm draws numbers the student
    alone never draws."""
    root = tmp_path_factory.mktemp('compare_cls')
    distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint), losses=[
        dict(student='logits', teacher='logits', loss=dict(type='DFRALoss', max_samples=2))])
    cfg = runner_config(shapes_data, root / 'work', distill_cfg=distill_cfg, max_iters=3)
    cfg['train_dataloader']['dataset']['augment'] = True
    return write_config(root / 'cmp.py', cfg), root


@pytest.fixture(scope='module')
def cls_run(cls_config):
    from tools.compare import main
    config, root = cls_config
    work_dir = str(root / 'compare')
    main([config, '--seeds', '0,1', '--iters', '3', '--evals', '2', '--work-dir', work_dir])
    return config, work_dir


def test_rows_metrics_and_report(cls_run):
    _, work_dir = cls_run
    rows = rows_of(work_dir)
    assert [(r['arm'], r['seed']) for r in rows] == [
        ('teacher', '-'), ('alone', '0'), ('distilled', '0'), ('alone', '1'), ('distilled', '1')]
    assert {r['task'] for r in rows} == {'cls'}
    for row in rows[1:]:
        assert row['iters'] == '3' and len(row['curve'].split()) == 2  # 2 evaluations
        assert float(row['best']) >= float(row['last'])
    md = open(osp.join(work_dir, 'compare.md')).read()
    assert md.startswith('# kdzoo compare: did distillation help?\n\n'
                         'Written by `kdzoo compare` from `compare.csv`; do not edit.\n')
    assert '| seed | alone (last) |' in md and 'Verdict rule' in md and 'Pairing checked' in md
    assert open(osp.join(work_dir, 'compare.png'), 'rb').read(8) == b'\x89PNG\r\n\x1a\n'


def test_arms_of_a_seed_share_the_initial_student_and_the_batches(cls_run):
    rows = rows_of(cls_run[1])
    by = {(r['arm'], r['seed']): r for r in rows}
    for seed in '01':
        alone, distilled = by['alone', seed], by['distilled', seed]
        assert alone['init_sha'] == distilled['init_sha']
        assert alone['batches_sha'] == distilled['batches_sha']
    # the seeds differ: another initial student and other augmented batches
    assert by['alone', '0']['init_sha'] != by['alone', '1']['init_sha']
    assert by['alone', '0']['batches_sha'] != by['alone', '1']['batches_sha']
    saved = torch.load(osp.join(cls_run[1], 'seed0', 'student_init.pth'), weights_only=True)
    from kdzoo.hashing import state_sha
    assert state_sha(saved) == by['alone', '0']['init_sha']


def test_rerun_runs_only_what_is_missing_and_leaves_files_unchanged(cls_run, capsys):
    from tools.compare import main
    config, work_dir = cls_run
    files = {name: open(osp.join(work_dir, name), 'rb').read()
             for name in ('compare.csv', 'compare.md', 'compare.png')}
    mtimes = {name: os.stat(osp.join(work_dir, name)).st_mtime_ns for name in files}
    args = [config, '--seeds', '0,1', '--iters', '3', '--evals', '2', '--work-dir', work_dir]
    main(args)
    assert 'skipped' in capsys.readouterr().out
    for name, content in files.items():
        assert open(osp.join(work_dir, name), 'rb').read() == content, name
        assert os.stat(osp.join(work_dir, name)).st_mtime_ns == mtimes[name], name
    # a run killed before it finished has no row: the rerun trains that one run only
    lines = files['compare.csv'].decode().splitlines(keepends=True)
    with open(osp.join(work_dir, 'compare.csv'), 'w') as f:
        f.writelines(lines[:-1])  # seed 1, distilled
    main(args)
    out = capsys.readouterr().out
    assert out.count('done already') == 3 and 'seed 1, distilled: 3it/2ev' in out
    rows = rows_of(work_dir)
    assert len(rows) == 5 and rows[-1]['arm'] == 'distilled' and rows[-1]['seed'] == '1'
    old = next(csv.DictReader(lines[:1] + lines[-1:]))
    assert rows[-1]['batches_sha'] == old['batches_sha'] and rows[-1]['last'] == old['last']


def test_missing_data_and_teacher_are_named_with_the_command(tmp_path, monkeypatch):
    from tools.compare import main
    monkeypatch.chdir(tmp_path)  # a fresh clone's root before the quick start: nothing made yet
    with pytest.raises(SystemExit) as err:
        main([osp.join(REPO, 'configs', 'quickstart', 'msdcrd.py')])
    message = str(err.value)
    assert 'data/quickstart/train' in message and 'data/quickstart/val' in message
    assert 'teacher checkpoint work_dirs/quickstart/teacher/iter_600.pth' in message
    assert 'kdzoo quickstart' in message


# --- seg and det smoke runs -----------------------------------------------------------------------
def smoke(tmp_path, config, teacher_config, build, data_options):
    """``tools/compare.py CONFIG --smoke --seeds 0`` on generated data with a random teacher."""
    from tools.compare import main
    model = build(Config.fromfile(osp.join(REPO, teacher_config)).model)
    model.init_weights()
    teacher = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': model.state_dict()}, teacher)
    options = data_options + [f'distill_cfg.teacher.checkpoint={teacher}',
                              'train_dataloader.batch_size=2']
    return main([osp.join(REPO, config), '--smoke', '--seeds', '0', '--work-dir',
                 str(tmp_path / 'cmp'), '--cfg-options', *options])


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def test_seg_smoke(tmp_path):
    from kdzoo.adapters.mmseg.distill import build_mmseg
    from kdzoo.toydata import make_seg_dataset
    data = make_seg_dataset(str(tmp_path / 'seg'), num_images=(4, 2))
    rows = smoke(tmp_path, 'configs/seg/quickstart_msdcrd.py', 'configs/seg/quickstart_teacher.py',
                 build_mmseg, [f'{loader}.dataset.data_root={data}' for loader in LOADERS])
    assert {r['task'] for r in rows} == {'seg'} and len(rows) == 3
    assert all(r['metric_name'] == 'mIoU' for r in rows)


def test_det_smoke(tmp_path):
    from kdzoo.adapters.mmdet.distill import build_mmdet
    from kdzoo.toydata import make_det_dataset
    data = make_det_dataset(str(tmp_path / 'det'), num_images=(4, 2))
    options = [f'{loader}.dataset.data_root={data["root"]}/' for loader in LOADERS]
    options += [f'{e}.ann_file={data["val_ann"]}' for e in ('val_evaluator', 'test_evaluator')]
    rows = smoke(tmp_path, 'configs/det/quickstart_pkd.py',
                 'configs/det/quickstart_retinanet_swin_teacher.py', build_mmdet, options)
    assert {r['task'] for r in rows} == {'det'} and len(rows) == 3
    assert all(r['metric_name'] == 'coco/bbox_mAP' for r in rows)


# --- reuse keyed by the fingerprint, crash-safe CSV, lock (issue 23 points 1-2) -----------------
@pytest.fixture(scope='module')
def reuse_setup(cls_config, tmp_path_factory):
    """A finished one-seed comparison (2 iterations, 1 evaluation) whose teacher checkpoint is a
    copy this module may change."""
    import shutil

    from tools.compare import main
    config, _ = cls_config
    root = tmp_path_factory.mktemp('reuse')
    teacher = str(root / 'teacher.pth')
    shutil.copy(Config.fromfile(config).distill_cfg.teacher.checkpoint, teacher)
    work_dir = str(root / 'cmp')
    args = command(config, work_dir, teacher)
    main(args)
    return args, work_dir, teacher


def refused(args, capsys=None):
    """``main(args)``'s SystemExit message (the test fails if it trains or returns)."""
    from tools.compare import main
    with pytest.raises(SystemExit) as err:
        main(args)
    return str(err.value)


def unchanged(work_dir):
    return open(osp.join(work_dir, 'compare.csv'), 'rb').read()


def test_every_row_carries_the_fingerprint_and_its_parts(reuse_setup):
    args, work_dir, _ = reuse_setup
    rows = rows_of(work_dir)
    assert [r['arm'] for r in rows] == ['teacher', 'alone', 'distilled']
    assert len({r['fingerprint'] for r in rows}) == 1 and len(rows[0]['fingerprint']) == 16
    parts = dict(p.split('=', 1) for p in rows[0]['fingerprint_parts'].split())
    assert sorted(parts) == ['budget', 'config', 'data', 'metric', 'precision', 'teacher']
    assert parts['metric'] == 'cls/top1*1' and parts['budget'] == '2it/1ev'
    assert parts['precision'] == 'fp32'
    assert osp.isfile(osp.join(work_dir, 'fingerprints', rows[0]['fingerprint'] + '.json'))
    record = json.load(open(osp.join(work_dir, 'seed0', 'student_init.json')))
    assert record == {'fingerprint': rows[0]['fingerprint']}


def command(config, work_dir, teacher, *extra, options=(), seeds='0', iters=('--iters', '2')):
    """The fixture's command line with ``extra`` arguments and cfg-options added."""
    return [config, '--seeds', seeds, *iters, '--evals', '1', '--work-dir', work_dir, *extra,
            '--cfg-options', f'distill_cfg.teacher.checkpoint={teacher}', *options]


@pytest.mark.parametrize('extra, options, iters, differs', [
    ((), ['optim_wrapper.optimizer.lr=0.01'], ('--iters', '2'),
     'config options differ: optim_wrapper.optimizer.lr'),
    ((), (), ('--iters', '3'), 'config options differ: train_cfg.max_iters, '
     'train_cfg.val_interval; budget 2it/1ev vs 3it/1ev'),
    ((), ['train_cfg.max_iters=3'], (), 'config options differ: train_cfg.max_iters, '
     'train_cfg.val_interval; budget 2it/1ev vs 3it/1ev'),
    (('--metric', 'cls/top5'), (), ('--iters', '2'), 'metric cls/top1*1 vs cls/top5*1'),
])
def test_another_setup_in_the_work_dir_stops_before_training_naming_what_differs(
        reuse_setup, extra, options, iters, differs):
    args, work_dir, teacher = reuse_setup
    before = unchanged(work_dir)
    message = refused(command(args[0], work_dir, teacher, *extra, options=options, iters=iters))
    assert message.startswith(f'compare: {work_dir} holds results of another setup: 3 row(s)')
    assert f"What differs (the CSV's vs this run's): {differs}." in message
    assert message.endswith('give this run a new --work-dir.')
    assert unchanged(work_dir) == before


def test_another_config_in_the_work_dir_is_named(reuse_setup, cls_config):
    args, work_dir, _ = reuse_setup
    cfg = Config.fromfile(args[0])
    cfg.distill_cfg.losses[0]['loss'] = dict(type='KDLoss')  # another loss, as MLDR-KD for MSDCRD
    other = write_config(osp.join(osp.dirname(work_dir), 'other.py'), cfg.to_dict())
    message = refused([other] + args[1:])
    assert 'config differs (the config file or its _base_): distill_cfg.losses' in message


def test_a_teacher_checkpoint_with_other_bytes_is_refused(reuse_setup):
    args, work_dir, teacher = reuse_setup
    original = open(teacher, 'rb').read()
    state = torch.load(teacher, weights_only=False)
    next(iter(state['state_dict'].values())).add_(1.0)
    torch.save(state, teacher)
    try:
        message = refused(args)
    finally:
        open(teacher, 'wb').write(original)
    assert 'What differs (the CSV\'s vs this run\'s): teacher checkpoint bytes differ.' in message


def test_data_with_another_file_is_refused(cls_config, tmp_path):
    import shutil

    from tools.compare import main
    config, _ = cls_config
    cfg = Config.fromfile(config)
    data = {split: str(tmp_path / split) for split in ('train', 'val')}
    for split, folder in data.items():  # a copy: the shared data set is not changed
        shutil.copytree(cfg[f'{split}_dataloader'].dataset.root, folder)
        cfg[f'{split}_dataloader'].dataset.root = folder
    cfg.test_dataloader.dataset.root = data['val']
    args = command(write_config(tmp_path / 'own_data.py', cfg.to_dict()), str(tmp_path / 'cmp'),
                   cfg.distill_cfg.teacher.checkpoint)
    main(args)
    class_folder = osp.join(data['train'], sorted(os.listdir(data['train']))[0])
    shutil.copy(osp.join(class_folder, sorted(os.listdir(class_folder))[0]),
                osp.join(class_folder, 'added_later.png'))
    message = refused(args)
    assert "What differs (the CSV's vs this run's): the data differ (files or their sizes)." \
        in message


def test_budget_option_and_iters_train_the_same_and_share_the_fingerprint(reuse_setup, capsys):
    from kdzoo.commands.compare import main, parse_args
    args, work_dir, teacher = reuse_setup
    assert parse_args(['c.py', '--cfg-options', 'train_cfg.max_iters=2']).iters == 2
    main(command(args[0], work_dir, teacher, options=['train_cfg.max_iters=2'], iters=()))
    # the same runs as --iters 2 (the schedule rescaled the same way): all reused
    assert capsys.readouterr().out.count('done already') == 2
    with pytest.raises(SystemExit):
        parse_args(['c.py', '--iters', '3', '--cfg-options', 'train_cfg.max_iters=2'])
    assert 'disagree: give one of them' in capsys.readouterr().err


def test_a_seed_added_with_the_same_fingerprint_reuses_the_others(reuse_setup, capsys):
    from tools.compare import main
    args, work_dir, teacher = reuse_setup
    main(command(args[0], work_dir, teacher, seeds='0,1'))
    out = capsys.readouterr().out
    assert 'teacher' not in out.split('seed 0')[0]  # the teacher's row is reused
    assert out.count('done already') == 2 and 'seed 1, alone: 2it/1ev' in out
    rows = rows_of(work_dir)
    assert [(r['arm'], r['seed']) for r in rows][-2:] == [('alone', '1'), ('distilled', '1')]
    assert len({r['fingerprint'] for r in rows}) == 1


def test_a_cut_last_row_is_named_removed_and_run_again(reuse_setup, capsys):
    from tools.compare import main
    args, work_dir, teacher = reuse_setup
    path = osp.join(work_dir, 'compare.csv')
    text = open(path).read()
    lines = text.splitlines(keepends=True)
    last = rows_of(work_dir)[-1]
    open(path, 'w').write(''.join(lines[:-1]) + lines[-1][:60])  # killed mid-write (old code)
    main(command(args[0], work_dir, teacher, seeds=','.join(sorted({'0', last['seed']}))))
    out = capsys.readouterr().out
    assert f'{path}, line {len(lines)}: not a whole row (' in out
    assert 'removed from the file, its run is done again' in out
    assert f'seed {last["seed"]}, {last["arm"]}: 2it/1ev' in out  # run again
    rows = rows_of(work_dir)
    from kdzoo.experiments.rows import scan
    assert not scan(path)[2] and len(rows) == len(lines) - 1
    assert rows[-1]['last'] == next(csv.DictReader(lines[:1] + lines[-1:]))['last']


def test_an_edited_row_is_never_reported(tmp_path, capsys):
    from kdzoo.experiments.paired import COLUMNS
    from kdzoo.experiments.rows import append_row, read_rows
    path = str(tmp_path / 'compare.csv')
    append_row(path, COLUMNS, dict(arm='alone', seed=0, last=11.8, finished='2026-12-02 10:00:00'))
    text = open(path).read()
    open(path, 'w').write(text.replace('11.8', '-9.0'))
    assert read_rows(path) == []
    assert 'line 2: not a whole row (its checksum (row_sha) does not match' in \
        capsys.readouterr().out


def test_a_nan_gain_gives_no_verdict_and_no_crash():
    assert paired_summary([1.0, float('nan')]).verdict == 'cannot tell: 1 of 2 gains not a number'


def test_a_second_compare_on_the_work_dir_stops_naming_the_running_one(reuse_setup):
    import fcntl
    args, work_dir, _ = reuse_setup
    with open(osp.join(work_dir, '.compare.lock'), 'a+') as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.seek(0)
        held.truncate()
        held.write('pid 4242: tools/compare.py cmp.py --seeds 0\n')
        held.flush()
        message = refused(args)
    assert message == (f'compare: another run is using {work_dir} (pid 4242: tools/compare.py '
                       f'cmp.py --seeds 0; lock file {work_dir}/.compare.lock). Wait for it to '
                       'finish, or give this run another folder')


def test_legacy_rows_are_kept_marked_and_never_reused(reuse_setup, tmp_path, capsys):
    import shutil

    from tools.compare import main
    args, work_dir, teacher = reuse_setup
    old = str(tmp_path / 'old')
    os.makedirs(osp.join(old, 'seed0'))
    legacy_columns = ['task', 'config', 'arm', 'seed', 'budget', 'metric_name', 'last', 'best',
                      'curve', 'iters', 'seconds', 'iter_s', 'init_sha', 'batches_sha', 'finished']
    with open(osp.join(old, 'compare.csv'), 'w', newline='') as f:  # as the old code wrote it
        writer = csv.DictWriter(f, legacy_columns, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(dict(r, last='-9.0') for r in rows_of(work_dir)[:3])
    shutil.copy(osp.join(work_dir, 'seed0', 'student_init.pth'), osp.join(old, 'seed0'))
    rows = main(command(args[0], old, teacher))
    out = capsys.readouterr().out
    assert 'teacher cls/top1 =' in out and 'done already' not in out  # nothing reused
    assert 'saved before fingerprints existed: moved to' in out
    assert osp.isfile(osp.join(old, 'seed0', 'student_init.legacy.pth'))
    every = rows_of(old)
    assert [bool(r['fingerprint']) for r in every] == [False] * 3 + [True] * 3
    assert all(r['last'] != '-9.0' for r in rows if r['fingerprint'])
    md = open(osp.join(old, 'compare.md')).read()
    assert 'Legacy: 3 row(s) of compare.csv were written before rows carried their fingerprint' \
        in md and '-9.00' not in md


@pytest.mark.parametrize('bad, says', [
    (['--iters', '0'], "argument --iters: 0: give a number >= 1"),
    (['--iters', '-3'], "argument --iters: -3: give a number >= 1"),
    (['--evals', '0'], "argument --evals: 0: give a number >= 1"),
    (['--seeds', '0,-1'], "argument --seeds: '0,-1': give distinct seeds >= 0"),
    (['--cfg-options', 'train_cfg.max_iters=-2'],
     'train_cfg.max_iters=-2: give a positive integer'),
])
def test_zero_and_negative_budgets_are_refused_before_anything_runs(tmp_path, capsys, bad, says):
    from tools.compare import main
    work_dir = tmp_path / 'cmp'
    with pytest.raises(SystemExit) as err:
        main(['no_such_config.py', '--work-dir', str(work_dir)] + bad)
    assert err.value.code == 2 and says in capsys.readouterr().err
    assert not work_dir.exists()


def test_a_csv_of_a_newer_version_or_a_file_as_work_dir_stops_before_anything_runs(tmp_path):
    from kdzoo.experiments.paired import COLUMNS
    from tools.compare import main
    config = str(tmp_path / 'cmp.py')
    write_config(config, runner_config({'train': str(tmp_path), 'val': str(tmp_path)},
                                       tmp_path / 'w', distill_cfg=dict(
                                           teacher=dict(config=TEACHER), losses=[])))
    work_dir = tmp_path / 'cmp'
    work_dir.mkdir()
    (work_dir / 'compare.csv').write_text(','.join(COLUMNS + ['newer']) + '\n')
    with pytest.raises(SystemExit, match=r"compare: .*compare.csv has columns \['newer'\] this "
                       r'code does not write \(another version wrote it\): use that version, or '
                       'give another --work-dir'):
        main([config, '--work-dir', str(work_dir), '--iters', '2'])
    (tmp_path / 'file').write_text('')
    with pytest.raises(SystemExit, match='compare: .*file is a file, not a folder'):
        main([config, '--work-dir', str(tmp_path / 'file'), '--iters', '2'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='--amp works where CUDA is')
def test_amp_without_cuda_stops_before_the_teachers_row(cls_config, tmp_path):
    from tools.compare import main
    with pytest.raises(SystemExit, match=r'compare: --amp needs a CUDA GPU'):
        main([cls_config[0], '--amp', '--iters', '2', '--work-dir', str(tmp_path / 'cmp')])
    assert not (tmp_path / 'cmp').exists()


def test_a_row_appended_onto_a_cut_one_is_removed_with_it(tmp_path, capsys):
    # the old code appended the next row onto a cut line: one line, two runs, neither whole
    from kdzoo.experiments.paired import COLUMNS
    from kdzoo.experiments.rows import append_row, read_rows, repair_rows
    path = str(tmp_path / 'compare.csv')
    for seed in (0, 1):
        append_row(path, COLUMNS, dict(arm='alone', seed=seed, last=11.8,
                                       finished='2026-12-02 10:00:00'))
    header, first, second = open(path).read().splitlines(keepends=True)
    open(path, 'w').write(header + first[:40] + second)
    assert repair_rows(path) == 1 and read_rows(path) == []
    assert f'{path}, line 2: not a whole row (' in capsys.readouterr().out
    assert open(path).read().splitlines() == [header.strip()]


def test_the_budget_names_the_evaluations_made():
    """--iters 4 --evals 3 validates at 2 and 4: the label said 3ev (a probe's case)."""
    from kdzoo.experiments.paired import budget_name
    cfg = Config(dict(train_cfg=dict(max_iters=500)))
    assert [budget_name(cfg, iters, evals) for iters, evals in
            [(4, 3), (2, 5), (6, 3), (7, 3), (None, 3)]] == [
        '4it/2ev', '2it/2ev', '6it/3ev', '7it/3ev', '500it/3ev']


def test_data_paths_reach_every_dataset_of_a_wrapper():
    """A ConcatDataset's datasets were left out of the data the fingerprint covers."""
    from kdzoo.hashing import data_paths
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
        dict(type='A', root='a'), dict(type='RepeatDataset', dataset=dict(
            type='B', data_root='b', ann_file='ann.json'))]))))
    assert data_paths(cfg) == [
        ('train_dataloader.dataset.datasets.0.root', 'a', 'folder'),
        ('train_dataloader.dataset.datasets.1.dataset.data_root', 'b', 'folder'),
        ('train_dataloader.dataset.datasets.1.dataset.ann_file', 'b/ann.json', 'file')]


# --- a teacher-output cache shared between comparisons (issue 25 point 6) -----------------------
def test_compares_sharing_a_teacher_cache_run_the_teacher_once_per_seed(cls_config, tmp_path,
                                                                        monkeypatch):
    """A loss-weight sweep in two work dirs with one --teacher-cache: the second comparison's
    training steps never run the teacher, and its rows (metrics, curve, fingerprint) are those of
    the same comparison run live."""
    from kdzoo.adapters.base import DistillModel
    from tools.compare import main
    calls = []
    run_teacher = DistillModel.run_teacher
    monkeypatch.setattr(DistillModel, 'run_teacher',
                        lambda self, name, inputs: calls.append(1)
                        or run_teacher(self, name, inputs))
    config, _ = cls_config
    cache = str(tmp_path / 'cache')
    args = [config, '--seeds', '0,1', '--iters', '2', '--evals', '1']
    heavier = ['--cfg-options', 'distill_cfg.losses.0.weight=2.0']
    first = main(args + ['--work-dir', str(tmp_path / 'weight1'), '--teacher-cache', cache])
    assert sorted(os.listdir(cache)) == ['seed0', 'seed1']
    assert len(calls) == 2 * (2 + 1)  # per seed: 2 steps and the size probe before them
    calls.clear()
    cached = main(args + ['--work-dir', str(tmp_path / 'weight2'), '--teacher-cache', cache]
                  + heavier)
    assert calls == [] and cached[0]['fingerprint'] != first[0]['fingerprint']  # another weight
    live = main(args + ['--work-dir', str(tmp_path / 'weight2_live')] + heavier)
    assert len(calls) == 2 * 2
    fields = ('arm', 'seed', 'last', 'best', 'curve', 'init_sha', 'batches_sha', 'fingerprint')
    assert [[r[f] for f in fields] for r in cached] == [[r[f] for f in fields] for r in live]


def test_a_config_with_its_own_cache_gets_one_cache_per_seed_under_it(cls_config, tmp_path):
    """A config whose distill_cfg sets teacher.cache, compared over two seeds without
    --teacher-cache: each seed's cache is a folder of its own under the config's (one folder for
    both would stop seed 1: 'the seed differs')."""
    from tools.compare import main
    config, _ = cls_config
    cache = str(tmp_path / 'own')
    rows = main([config, '--seeds', '0,1', '--iters', '2', '--evals', '1', '--work-dir',
                 str(tmp_path / 'work'), '--cfg-options', f'distill_cfg.teacher.cache={cache}'])
    assert sorted(os.listdir(cache)) == ['seed0', 'seed1']
    assert {(r['arm'], r['seed']) for r in rows} == {('teacher', '-')} | {
        (arm, seed) for arm in ('alone', 'distilled') for seed in ('0', '1')}


# --- a baseline: the config against another distilling config of the same student (issue 26) ---
def baseline_config(cls_config, path, weight=1.0, change=None):
    """``cls_config`` with another distillation loss (KD, ``weight``) written to ``path``;
    ``change(cfg)`` edits the config dict before."""
    cfg = Config.fromfile(cls_config[0]).to_dict()
    cfg['distill_cfg']['losses'] = [dict(student='logits', teacher='logits', weight=weight,
                                         loss=dict(type='KDLoss', tau=4.0))]
    if change:
        change(cfg)
    return write_config(path, cfg)


@pytest.fixture(scope='module')
def baseline_run(cls_config, tmp_path_factory):
    """Seeds 0 and 1, 2 iterations, 1 evaluation, of cls_config against a KD baseline."""
    from tools.compare import main
    root = tmp_path_factory.mktemp('baseline')
    other = baseline_config(cls_config, root / 'kd.py')
    work_dir = str(root / 'cmp')
    args = [cls_config[0], '--seeds', '0,1', '--iters', '2', '--evals', '1', '--work-dir',
            work_dir, '--baseline', other]
    main(args)
    return args, work_dir, other


def test_baseline_rows_difference_and_verdict_follow_from_the_csv(baseline_run):
    import statistics
    args, work_dir, other = baseline_run
    with open(osp.join(work_dir, 'compare.csv'), newline='') as f:
        rows = list(csv.DictReader(f))
    assert [(r['arm'], r['seed']) for r in rows] == [
        ('teacher', '-'), ('alone', '0'), ('distilled', '0'), ('alone', '1'), ('distilled', '1'),
        ('baseline', '0'), ('baseline', '1')]  # the config's arms first, then the baseline's
    by = {(r['arm'], r['seed']): r for r in rows}
    main_parts = dict(p.split('=', 1) for p in by['distilled', '0']['fingerprint_parts'].split())
    for seed in '01':
        baseline, distilled = by['baseline', seed], by['distilled', seed]
        assert baseline['config'] == other and distilled['config'] == args[0]
        assert baseline['init_sha'] == distilled['init_sha']  # the seed's saved student
        assert baseline['batches_sha'] == distilled['batches_sha']
        parts = dict(p.split('=', 1) for p in baseline['fingerprint_parts'].split())
        assert {k: parts[k] for k in main_parts} == main_parts
        assert sorted(set(parts) - set(main_parts)) == ['baseline_config', 'baseline_teacher']
        assert parts['baseline_teacher'] == main_parts['teacher']  # the same checkpoint
        assert baseline['fingerprint'] != distilled['fingerprint']
    # the difference, its mean, std, 95 % t interval (t(0.975, 1) = 12.7062) and the verdict
    d = [float(by['distilled', s]['last']) - float(by['baseline', s]['last']) for s in '01']
    mean, std = statistics.mean(d), statistics.stdev(d)
    low, high = mean - 12.7062 * std / 2 ** 0.5, mean + 12.7062 * std / 2 ** 0.5
    verdict = 'helped' if low > 0 else 'hurt' if high < 0 else 'no clear effect'
    md = open(osp.join(work_dir, 'compare.md')).read()
    section = md[md.index('Baseline: '):]
    assert section.startswith(f'Baseline: `{other}`')
    for seed, value in zip('01', d):
        assert f'| {seed} | {float(by["distilled", seed]["last"]):.2f} | ' \
               f'{float(by["baseline", seed]["last"]):.2f} | {value:+.2f} |' in section
    assert (f'Mean difference over 2 seeds: {mean:+.2f} ± {std:.2f} (sample std); 95 % interval '
            f'of the mean [{low:+.2f}, {high:+.2f}] → **{verdict}**.') in section
    assert 'Baseline rule:' in section and 'Pairing checked' in section
    # the baseline's own gain over the student alone, by the same rule
    g = [float(by['baseline', s]['last']) - float(by['alone', s]['last']) for s in '01']
    mean, std = statistics.mean(g), statistics.stdev(g)
    low, high = mean - 12.7062 * std / 2 ** 0.5, mean + 12.7062 * std / 2 ** 0.5
    verdict = 'helped' if low > 0 else 'hurt' if high < 0 else 'no clear effect'
    assert ('The baseline against the student alone (the same rule on its gain per seed): Mean '
            f'gain over 2 seeds: {mean:+.2f} ± {std:.2f} (sample std); 95 % interval of the mean '
            f'[{low:+.2f}, {high:+.2f}] → **{verdict}**.') in section


def test_the_baseline_alone_trains_as_its_own_comparison_does(baseline_run, tmp_path):
    """The baseline arm is the baseline config's distilled run of the seed: its own comparison
    (another work dir, its own saved student) gives the same metric and fingerprints."""
    from tools.compare import main
    args, work_dir, other = baseline_run
    own = main([other, '--seeds', '1', '--iters', '2', '--evals', '1', '--work-dir',
                str(tmp_path / 'own')])
    mine = {r['arm']: r for r in rows_of(work_dir) if r['seed'] == '1'}
    theirs = {r['arm']: r for r in own if r['seed'] == '1'}
    for field in ('last', 'curve', 'init_sha', 'batches_sha'):
        assert mine['baseline'][field] == theirs['distilled'][field], field


@pytest.mark.parametrize('change, differs', [
    (lambda cfg: cfg.update(model=dict(STUDENT, model_name='test_efficientnet')),
     'model.model_name'),
    (lambda cfg: cfg['train_dataloader'].update(batch_size=2), 'train_dataloader.batch_size'),
    (lambda cfg: cfg.update(param_scheduler=[dict(type='MultiStepLR', by_epoch=False,
                                                  milestones=[1], gamma=0.1)]),
     'param_scheduler'),
    (lambda cfg: cfg['optim_wrapper']['optimizer'].update(lr=0.5),
     'optim_wrapper.optimizer.lr'),
])
def test_a_baseline_of_another_student_data_or_schedule_is_refused_naming_both(
        cls_config, tmp_path, change, differs):
    from tools.compare import main
    other = baseline_config(cls_config, tmp_path / 'other.py', change=change)
    work_dir = tmp_path / 'cmp'
    with pytest.raises(SystemExit) as err:
        main([cls_config[0], '--iters', '2', '--work-dir', str(work_dir), '--baseline', other])
    assert str(err.value) == (
        f'compare: the baseline {other} does not train the same student as {cls_config[0]}: '
        f'{differs} differ. The paired difference needs the same student model, data, '
        'evaluator, optimizer and schedule (model, train_dataloader, val_dataloader, '
        'val_evaluator, optim_wrapper, train_cfg, param_scheduler); give a baseline that '
        'differs from the config in its distill_cfg only (e.g. one sharing its _base_ files).')
    assert not work_dir.exists()


def test_a_changed_baseline_is_recomputed_and_the_config_rows_reused(baseline_run, cls_config,
                                                                      tmp_path, capsys):
    """The same baseline under another path reuses every row; changed (another loss weight), its
    arm is trained again, the config's rows reused, its old rows kept beside, never reported."""
    import shutil

    from tools.compare import main
    args, work_dir, other = baseline_run
    work = str(tmp_path / 'cmp')
    shutil.copytree(work_dir, work)
    moved = baseline_config(cls_config, tmp_path / 'kd_moved.py')  # the same config elsewhere
    command = args[:7] + ['--work-dir', work, '--baseline', moved]
    main(command)
    assert capsys.readouterr().out.count('done already') == 6
    before = rows_of(work)
    changed = baseline_config(cls_config, tmp_path / 'kd_moved.py', weight=3.0)
    rows = main(command)
    out = capsys.readouterr().out
    assert out.count('done already') == 4  # alone and distilled of both seeds
    assert 'seed 0, baseline' in out and 'seed 1, baseline' in out
    assert '2 baseline row(s) of another baseline or an earlier version of it' in out
    every = rows_of(work)
    assert every[:len(before)] == before  # the old rows kept
    new = [r for r in every[len(before):]]
    assert [(r['arm'], r['seed'], r['config']) for r in new] == [
        ('baseline', '0', changed), ('baseline', '1', changed)]
    assert new[0]['fingerprint'] != before[5]['fingerprint']
    assert [r for r in rows if r['arm'] == 'baseline'] == new  # reported: the new ones only
    md = open(osp.join(work, 'compare.md')).read()
    assert f'| 0 | {float(before[2]["last"]):.2f} | {float(new[0]["last"]):.2f} |' in md


# --- a multi-teacher config: one teacher row per teacher (issue 26) -----------------------------
def by_arm(rows):
    return {r['arm']: r for r in rows}


def constant_teacher(checkpoint, path, label):
    """``checkpoint`` (the trained teacher) with its classifier made to answer class ``label`` for
    every image (zero weights, a bias for that class), saved to ``path``."""
    state = torch.load(checkpoint, weights_only=False)
    weights = state['state_dict']
    weights['model.head.fc.weight'].zero_()
    weights['model.head.fc.bias'].copy_(torch.nn.functional.one_hot(
        torch.tensor(label), weights['model.head.fc.bias'].numel()).float() * 10)
    torch.save(state, path)
    return str(path)


@pytest.fixture(scope='module')
def multi_teacher(shapes_data, teacher_checkpoint, tmp_path_factory):
    """Two teachers, ``cnn`` answering class 0 and ``vit`` class 1 for every image, on a copy of
    the validation set where the classes hold 2, 3, 4 and 5 images (so any two classes' teachers
    score differently); a two-teacher config and the single-teacher config of ``cnn``."""
    import shutil
    root = tmp_path_factory.mktemp('multi_teacher')
    data = dict(shapes_data, val=str(root / 'val'))
    shutil.copytree(shapes_data['val'], data['val'])
    for extra, name in enumerate(sorted(os.listdir(data['val']))):
        folder = osp.join(data['val'], name)
        first = osp.join(folder, sorted(os.listdir(folder))[0])
        for copy in range(extra):
            shutil.copy(first, osp.join(folder, f'copy{copy}.png'))
    teachers = {name: constant_teacher(teacher_checkpoint, root / f'{name}.pth', label)
                for label, name in enumerate(('cnn', 'vit'))}
    kd = dict(type='KDLoss', tau=4.0)
    two = runner_config(data, root / 'work', distill_cfg=dict(
        teachers={name: dict(config=TEACHER, checkpoint=path) for name, path in teachers.items()},
        losses=[dict(student='logits', teacher='cnn:logits', loss=kd),
                dict(student='logits', teacher='vit:logits', loss=kd)]))
    one = runner_config(data, root / 'work', distill_cfg=dict(
        teacher=dict(config=TEACHER, checkpoint=teachers['cnn']),
        losses=[dict(student='logits', teacher='logits', loss=kd)]))
    return dict(root=root, data=data, teachers=teachers,
                two=write_config(root / 'two.py', two), one=write_config(root / 'one.py', one))


@pytest.fixture(scope='module')
def multi_run(multi_teacher):
    """The two-teacher config compared over seed 0 with the cnn-only config as its baseline."""
    from tools.compare import main
    work_dir = str(multi_teacher['root'] / 'cmp')
    rows = main([multi_teacher['two'], '--seeds', '0', '--iters', '2', '--evals', '1',
                 '--work-dir', work_dir, '--baseline', multi_teacher['one']])
    return rows, work_dir


def test_a_multi_teacher_config_has_one_row_per_teacher_each_its_own_metric(multi_teacher,
                                                                             multi_run):
    """Each teacher's row holds what evaluating that teacher alone gives (tools/test.py on the
    teacher's own config and checkpoint), and the two differ (the rows are not swapped)."""
    from tools.test import main as test
    rows, work_dir = multi_run
    assert [(r['arm'], r['seed']) for r in rows] == [
        ('teacher:cnn', '-'), ('teacher:vit', '-'), ('alone', '0'), ('distilled', '0'),
        ('baseline', '0')]
    alone = {}
    for name, checkpoint in multi_teacher['teachers'].items():
        config = write_config(multi_teacher['root'] / f'{name}_alone.py', runner_config(
            multi_teacher['data'], multi_teacher['root'] / f'{name}_alone', model=TEACHER))
        alone[name] = test([config, checkpoint])['cls/top1']
    measured = {r['arm']: float(r['last']) for r in rows if r['arm'].startswith('teacher')}
    assert measured == {'teacher:cnn': pytest.approx(alone['cnn'], abs=1e-6),  # CSV digits
                        'teacher:vit': pytest.approx(alone['vit'], abs=1e-6)}
    assert alone['cnn'] != alone['vit']
    md = open(osp.join(work_dir, 'compare.md')).read()
    assert f'Teachers: cnn {alone["cnn"]:.2f}, vit {alone["vit"]:.2f}.' in md
    # the single-teacher baseline of the same student pairs with it
    by = by_arm(rows)
    assert by['baseline']['init_sha'] == by['distilled']['init_sha']
    assert by['baseline']['batches_sha'] == by['distilled']['batches_sha']


@pytest.mark.parametrize('teachers, alone, says', [
    ({'teacher': 20.0}, 30.0, ['Teacher: 20.00.', 'Note: the teacher (20.00) is not better than '
                               'the student alone (30.00) in this budget']),
    ({'teacher:cnn': 20.0, 'teacher:vit': 25.0}, 30.0, [
        'Teachers: cnn 20.00, vit 25.00.', 'Note: no teacher (cnn 20.00, vit 25.00) is better '
        'than the student alone (30.00) in this budget']),
    ({'teacher:cnn': 20.0, 'teacher:vit': 35.0}, 30.0, ['Teachers: cnn 20.00, vit 35.00.']),
])
def test_the_report_names_each_teacher_and_notes_when_none_beats_the_student(teachers, alone,
                                                                             says):
    from kdzoo.experiments.compare_report import summary_lines
    rows = [dict(arm=arm, seed='-', last=str(value)) for arm, value in teachers.items()] + [
        dict(arm=arm, seed='0', last=str(alone), best=str(alone), init_sha='i', batches_sha='b',
             fingerprint='f', metric_name='cls/top1') for arm in ('alone', 'distilled')]
    text = '\n'.join(summary_lines([dict(r, fingerprint='f') for r in rows], [0]))
    for line in says:
        assert line in text
    assert ('Note:' in text) == (len(says) == 2)


def test_a_rerun_of_a_multi_teacher_compare_reuses_every_teacher_row(multi_teacher, multi_run,
                                                                     capsys):
    from tools.compare import main
    rows, work_dir = multi_run
    before = unchanged(work_dir)
    main([multi_teacher['two'], '--seeds', '0', '--iters', '2', '--evals', '1', '--work-dir',
          work_dir, '--baseline', multi_teacher['one']])
    out = capsys.readouterr().out
    assert '[compare] teacher' not in out and out.count('done already') == 3
    assert unchanged(work_dir) == before


def test_every_teachers_checkpoint_bytes_are_fingerprinted_not_its_path(multi_teacher, tmp_path):
    import shutil

    from kdzoo.experiments.paired import fingerprint_of
    from kdzoo.runner import load_config
    config = multi_teacher['two']

    def fingerprint(vit):
        options = {'distill_cfg.teachers.vit.checkpoint': vit}
        return fingerprint_of(config, load_config(config, options), options, 2, 1, 'cls/top1', 1.0)

    moved = shutil.copy(multi_teacher['teachers']['vit'], tmp_path / 'moved.pth')
    assert fingerprint(str(moved)).value == fingerprint(multi_teacher['teachers']['vit']).value
    state = torch.load(moved, weights_only=False)
    state['state_dict']['model.head.fc.bias'].add_(1.0)
    torch.save(state, moved)
    changed, original = fingerprint(str(moved)), fingerprint(multi_teacher['teachers']['vit'])
    assert changed.parts['teacher'] != original.parts['teacher']
    assert {k: v for k, v in changed.parts.items() if k != 'teacher'} == \
        {k: v for k, v in original.parts.items() if k != 'teacher'}


def test_a_missing_checkpoint_of_one_teacher_is_named_with_its_key(multi_teacher):
    from kdzoo.experiments.paired import check_inputs
    from kdzoo.runner import load_config
    config = multi_teacher['two']
    cfg = load_config(config, {'distill_cfg.teachers.vit.checkpoint': '/nowhere/vit.pth'})
    with pytest.raises(SystemExit) as err:
        check_inputs(cfg, config)
    assert 'teacher checkpoint /nowhere/vit.pth (distill_cfg.teachers.vit.checkpoint)' in \
        str(err.value)
    assert 'cnn' not in str(err.value).split('\n', 1)[1]  # the other teacher is there


def test_missing_inputs_without_a_setup_command_name_what_makes_them_without_a_checkout(tmp_path):
    """A config with no ``setup_command``: the fix names the kdzoo commands that make them (a
    wheel user has no tools/ folder)."""
    from kdzoo.experiments.paired import check_inputs
    cfg = Config(dict(train_dataloader=dict(dataset=dict(root=str(tmp_path / 'train'))),
                      distill_cfg=dict(teacher=dict(checkpoint=str(tmp_path / 'teacher.pth')))))
    with pytest.raises(SystemExit) as err:
        check_inputs(cfg, 'my_config.py')
    assert str(err.value) == (
        f'compare: my_config.py needs inputs that do not exist (from {os.getcwd()}):\n'
        f'  folder {tmp_path / "train"} (train_dataloader.dataset.root)\n'
        f'  teacher checkpoint {tmp_path / "teacher.pth"} (distill_cfg.teacher.checkpoint)\n'
        'Make them first (a generated set: kdzoo make-data cls|seg|det ROOT; a teacher: '
        'kdzoo train on its config), or point the config at them with --cfg-options.')


def test_the_setup_command_is_no_part_of_the_config_fingerprint(tmp_path):
    """``setup_command`` says how a config's data and teachers are made (the message of a missing
    input), not what is trained: changing its wording keeps every result's fingerprint."""
    from kdzoo.experiments.runs import config_sha
    written = {}
    for name, body in (('a', "setup_command = 'python tools/quickstart.py'\n"),
                       ('b', "setup_command = 'kdzoo quickstart'\n"),
                       ('c', "setup_command = 'kdzoo quickstart'\nlr = 2e-3\n")):
        (tmp_path / name).mkdir()
        path = tmp_path / name / 'config.py'  # one name: the default work_dir is named after it
        path.write_text("model = dict(type='TimmClassifier', model_name='resnet10t')\nlr = 1e-3\n"
                        + body)
        written[name] = config_sha(str(path), {})
    assert written['a'] == written['b'] != written['c']
