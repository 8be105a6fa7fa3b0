"""tools/compare.py: the paired verdict. Both arms of a seed start from the same student and see
the same augmented batches (even when the distilled arm draws random numbers of its own), a
rerun runs only what is missing and leaves finished files unchanged, missing inputs are named
with the command that makes them, and the smoke run works for cls, seg and det."""
import csv
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from tools_helpers import REPO, TEACHER, runner_config, write_config

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
    from kdzoo.experiments.runs import state_sha
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
    assert 'python tools/quickstart.py' in message


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
