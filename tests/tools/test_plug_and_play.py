"""tools/plug_and_play.py and its engine, kdzoo.experiments.matrix: the --smoke matrix writes
finite CSV rows, the markdown and the PNG; a rerun skips every row; every classification loss
entry builds and gives finite losses; the schedule is rescaled to the iterations; a task whose
adapter does not import fails clearly; a cached teacher is trained again when its config changed;
every task setting comes from the profile's resolved entry; the model labels name type and
options, and the relabel migration of an old CSV changes those labels only, once."""
import json
import math
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch

from kdzoo.experiments import matrix, matrix_report
from kdzoo.experiments.rows import append_row, read_rows
from kdzoo.schedule import rescaled_schedule
from tools import plug_and_play as pnp


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp('pnp')
    summary = pnp.main(['--smoke', '--out', str(out)])
    return out, summary


def rows_of(out):
    return read_rows(str(out / pnp.CSV_NAME))


def test_smoke_writes_finite_rows_markdown_and_png(smoke):
    out, summary = smoke
    rows = rows_of(out)
    assert len(rows) == len(summary['done']) and not summary['skipped']
    tasks = {r['task'] for r in rows}
    assert 'cls' in tasks and tasks <= set(matrix.DATA_WRITERS)
    cls_rows = [r for r in rows if r['task'] == 'cls']
    smoke_pairs = matrix.load_profile('smoke')['tasks']['cls'].pairs
    assert sorted({r['pair'] for r in cls_rows}) == sorted(smoke_pairs)
    assert {r['loss'] for r in rows} == {'none', 'MSDCRD'}
    for row in rows:
        assert row['iters'] == '2' and row['seed'] == '0'
        for key in ('metric', 'teacher_metric', 'student_alone_metric', 'gain', 'iter_s',
                    'student_step_s'):
            assert math.isfinite(float(row[key])), (key, row)
        if row['loss'] == 'none':
            assert float(row['gain']) == 0 and row['step_ratio'] == ''
        else:
            assert abs(float(row['gain']) - (float(row['metric'])
                                             - float(row['student_alone_metric']))) < 1e-6
            assert float(row['step_ratio']) > 0 and 0 < float(row['loss_share']) < 1
    md = (out / matrix_report.MD_NAME).read_text()
    for row in rows:
        assert f'## {row["task"]}: {row["pair"]}' in md
    assert '| MSDCRD | 1/1 |' in md and '| none (student alone) | 1/1 |' in md
    assert (out / matrix_report.PNG_NAME).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_rerun_skips_existing_rows(smoke, capsys):
    out, first = smoke
    before = (out / pnp.CSV_NAME).read_text()
    summary = pnp.main(['--smoke', '--out', str(out)])
    assert summary['done'] == [] and sorted(summary['skipped']) == sorted(first['done'])
    assert (out / pnp.CSV_NAME).read_text() == before
    assert capsys.readouterr().out.count('skipped (already in the CSV)') == len(first['done'])


@pytest.mark.parametrize('loss', sorted(matrix.load_profile('gpu')['tasks']['cls'].losses))
def test_every_cls_loss_entry_builds_and_is_finite(loss):
    from mmengine.config import Config

    from kdzoo.adapters.cls import DistillClassifier
    teacher, student = matrix.load_profile('smoke')['tasks']['cls'].pairs['tiny-vit_to_tiny-resnet']
    p = matrix.probe_pair('cls', (teacher, student), 100)
    assert p.num_classes == 24 and len(p.student) == 4 and len(p.teacher) == 4
    model = DistillClassifier(
        student=Config.fromfile(f'{matrix.REPO}/{student}').model,
        distill_cfg=dict(teacher=dict(config=f'{matrix.REPO}/{teacher}'),
                         **matrix.recipe_of(matrix.load_profile('gpu')['tasks']['cls'], loss, p)))
    torch.manual_seed(0)
    losses = model(torch.rand(4, 3, 32, 32) * 255, torch.tensor([0, 1, 2, 3]), mode='loss')
    distill = [k for k in losses if k.startswith('distill.loss_')]
    assert distill and all(torch.isfinite(v) for v in losses.values())


def test_schedule_is_rescaled_to_the_iterations():
    from mmengine.config import Config
    cfg = Config.fromfile(f'{matrix.REPO}/configs/plug_and_play/cls/r18.py')
    warmup, cosine = rescaled_schedule(cfg, 500)  # the config: 50 warm-up of 1000
    assert (warmup['begin'], warmup['end']) == (0, 25)
    assert (cosine['begin'], cosine['end'], cosine['T_max']) == (25, 500, 475)
    warmup, cosine = rescaled_schedule(cfg, 2)
    assert warmup['end'] > warmup['begin'] and cosine['end'] == 2 and cosine['T_max'] >= 1


def test_missing_adapter_is_reported(monkeypatch, tmp_path):
    from kdzoo import tasks
    monkeypatch.setitem(tasks.ADAPTERS, 'seg', ('kdzoo.adapters.no_such_adapter', 'mmseg'))
    with pytest.raises(SystemExit, match="task 'seg': adapter not available"):
        pnp.main(['--smoke', '--tasks', 'seg', '--out', str(tmp_path)])


def test_cpu_profile_plans_every_row_and_reports_the_rows_not_run(tmp_path):
    from kdzoo.experiments.matrix_report import write_report
    opts = pnp.resolve(pnp.parse_args(['--profile', 'cpu', '--tasks', 'cls,seg,det',
                                       '--out', str(tmp_path)]))
    assert opts.seeds == {'cls': 3, 'seg': 2, 'det': 2}
    assert opts.losses['cls'] == ['none', 'KD', 'DKD', 'DIST', 'OFA', 'MSDCRD', 'LFCC', 'MLDR-KD']
    assert opts.losses['seg'] == ['none', 'KD', 'CWD', 'MSDCRD', 'LFCC']
    assert opts.losses['det'] == ['none', 'CWD', 'PKD', 'MSDCRD', 'LFCC']
    assert len(opts.task['cls'].pairs) == 2
    assert matrix.iters_of(opts, 'cls', 'vit_to_test-resnet', 'teacher') == 3000
    assert matrix.budget_of(opts, 'cls', 'vit_to_test-resnet') == '200it'  # per pair
    assert matrix.budget_of(opts, 'cls', 'resnet10t_to_vit') == '500it'  # the task's
    matrix.write_plan(opts)
    text = open(write_report(str(tmp_path))[0]).read()
    assert '## cls: vit_to_test-resnet, 200it, teacher 3000 iterations' in text
    for task in ('cls', 'seg', 'det'):
        for pair in opts.task[task].pairs:
            assert f'## {task}: {pair}' in text
    assert text.count('not run yet') == 2 * 8 + 5 + 5 and 'Profile: cpu' in text


def test_report_marks_a_weak_teacher_and_gives_the_paired_verdict(tmp_path, monkeypatch):
    from kdzoo.experiments import matrix_report
    from kdzoo.experiments.matrix_report import COLUMNS, write_report
    charted = []
    monkeypatch.setattr(matrix_report, 'write_chart', lambda panels, path: charted.extend(panels))
    common = dict(task='cls', pair='p', budget='500it', metric_name='cls/top1',
                  teacher_metric=53.0, device='cpu')
    for seed, (alone, kd) in enumerate([(50.0, 52.0), (51.0, 53.5), (49.0, 51.2)]):
        append_row(str(tmp_path / pnp.CSV_NAME), COLUMNS, dict(
            common, loss='none', seed=seed, teacher_iters='-', teacher_dtype='-', metric=alone))
        append_row(str(tmp_path / pnp.CSV_NAME), COLUMNS, dict(
            common, loss='KD', seed=seed, teacher_iters=600, teacher_dtype='fp32', metric=kd,
            step_ratio=1.2, loss_share=0.01, student_step_s=0.1, teacher_forward_s=0.05,
            distill_step_s=0.18, loss_s=0.002))
    text = open(write_report(str(tmp_path))[0]).read()
    assert '**Teacher too weak: 53.00 vs the student alone 50.00' in text
    assert '| KD | 3/3 | 52.23 ± 1.17 | 2.23 ± 0.25 | [+1.61, +2.86] | helped |' in text
    assert ('| cls | p | 500it | KD | 0 | 1.200 | 1.0% | not recorded † | 30.0 ms over student + '
            'teacher') in text
    (title, runs, weak), = charted  # the chart's panel says so too
    assert weak and 'TEACHER TOO WEAK' in title and {r['loss'] for r in runs} == {'KD'}


def test_report_takes_step_costs_from_quietly_timed_runs_and_marks_busy_ones(tmp_path):
    from kdzoo.experiments.matrix_report import BUSY_NOTE, COLUMNS, write_report
    path = str(tmp_path / pnp.CSV_NAME)
    common = dict(task='cls', pair='p', budget='500it', metric_name='cls/top1', teacher_metric=90,
                  teacher_iters=600, teacher_dtype='fp32', device='cpu', student_step_s=0.1,
                  teacher_forward_s=0.05, loss_s=0.001)
    for seed in range(2):
        append_row(path, COLUMNS, dict(common, loss='none', seed=seed, teacher_iters='-',
                                       teacher_dtype='-', metric=50, iter_s=0.1,
                                       load_per_core=1.0))
    # DIST: one run timed on a busy machine (load 3.1 per core), one quiet: only the quiet counts
    append_row(path, COLUMNS, dict(common, loss='DIST', seed=0, metric=52, step_ratio=2.5,
                                   loss_share=0.02, distill_step_s=0.375, load_per_core=3.1))
    append_row(path, COLUMNS, dict(common, loss='DIST', seed=1, metric=53, step_ratio=1.05,
                                   loss_share=0.01, distill_step_s=0.1575, load_per_core=1.0,
                                   iter_s=0.165))
    # KD: only busy runs: their mean, marked
    append_row(path, COLUMNS, dict(common, loss='KD', seed=0, metric=52, step_ratio=1.5,
                                   loss_share=0.01, distill_step_s=0.225, load_per_core=2.0,
                                   iter_s=0.18))
    text = open(write_report(str(tmp_path))[0]).read()
    assert '| DIST | 2/2 | 52.50 ± 0.71 | 2.50 ± 0.71 |' in text
    # run ratio: the distilled run's iteration / (the alone run's + teacher forward)
    assert '| 1.050 | 1.100 | 1.00% |' in text and '| 1.500 † | 1.200 † | 1.00% † |' in text
    assert BUSY_NOTE in text
    assert '| cls | p | 500it | DIST | 0 | 2.500 | 2.0% | 3.10 † |' in text


def test_csv_of_older_columns_is_rewritten_once_with_the_new_header(tmp_path):
    path = str(tmp_path / 'rows.csv')
    append_row(path, ['a', 'b'], dict(a=1, b=2))
    append_row(path, ['a', 'c', 'b'], dict(a=3, c=4, b=5))
    assert open(path).read().splitlines() == ['a,c,b', '1,,2', '3,4,5']
    with pytest.raises(ValueError, match=r"columns \['c'\] this code does not write"):
        append_row(path, ['a', 'b'], dict(a=6, b=7))


def test_a_sitting_on_some_pairs_keeps_the_plan_of_the_others(tmp_path):
    from kdzoo.experiments.matrix_report import write_report
    every = ['--profile', 'cpu', '--tasks', 'cls,seg,det', '--out', str(tmp_path)]
    matrix.write_plan(pnp.resolve(pnp.parse_args(every)))
    matrix.write_plan(pnp.resolve(pnp.parse_args(
        ['--profile', 'cpu', '--tasks', 'cls', '--pairs', 'vit_to_test-resnet',
         '--out', str(tmp_path)])))
    opts = pnp.resolve(pnp.parse_args(every))
    text = open(write_report(str(tmp_path))[0]).read()
    for task in ('cls', 'seg', 'det'):
        for pair in opts.task[task].pairs:
            assert f'## {task}: {pair}' in text
    assert text.count('not run yet') == 2 * 8 + 5 + 5


@pytest.mark.parametrize('pair', sorted(matrix.load_profile('cpu')['tasks']['cls'].pairs))
def test_cpu_profile_cls_recipes_build_and_are_finite(pair):
    from mmengine.config import Config

    from kdzoo.adapters.cls import DistillClassifier
    entry = matrix.load_profile('cpu')['tasks']['cls']
    teacher, student = entry.pairs[pair]
    p = matrix.probe_pair('cls', (teacher, student), 500)
    for loss in entry.run_losses:
        model = DistillClassifier(
            student=Config.fromfile(f'{matrix.REPO}/{student}').model,
            distill_cfg=dict(teacher=dict(config=f'{matrix.REPO}/{teacher}'),
                             **matrix.recipe_of(entry, loss, p)))
        losses = model(torch.rand(4, 3, 32, 32) * 255, torch.tensor([0, 1, 2, 3]), mode='loss')
        assert all(torch.isfinite(v) for v in losses.values()), loss


def test_report_says_when_the_seeds_of_a_pair_had_different_teachers(tmp_path):
    from kdzoo.experiments.matrix_report import COLUMNS, write_report
    path = str(tmp_path / pnp.CSV_NAME)
    common = dict(task='cls', pair='p', budget='500it', metric_name='cls/top1', device='cpu')
    for seed, teacher in enumerate((68.2, 64.8, 64.8)):
        append_row(path, COLUMNS, dict(common, loss='none', seed=seed, teacher_iters='-',
                                       teacher_dtype='-', metric=20, teacher_metric=teacher))
        append_row(path, COLUMNS, dict(common, loss='KD', seed=seed, teacher_iters=600,
                                       teacher_dtype='fp32', metric=22, teacher_metric=teacher))
    text = open(write_report(str(tmp_path))[0]).read()
    assert 'Teacher cls/top1: 68.20 (seeds 0), 64.80 (seeds 1, 2): the teacher was trained' in text


def test_a_cached_teacher_is_trained_again_when_its_config_changed(monkeypatch, tmp_path, capsys):
    trained = []

    def fake_train_run(config, folder, options, metric, scale):
        trained.append(config)
        os.makedirs(folder, exist_ok=True)
        open(osp.join(folder, 'iter_2.pth'), 'w').close()
        return SimpleNamespace(iter=2), SimpleNamespace(last=50.0, seconds=1.0)

    monkeypatch.setattr(matrix, 'train_run', fake_train_run)
    config = tmp_path / 'teacher.py'
    base = osp.join(matrix.REPO, 'configs', 'quickstart', 'teacher.py')
    config.write_text(f'_base_ = {base!r}\noptim_wrapper = dict(optimizer=dict(lr=1e-3))\n')
    opts = pnp.resolve(pnp.parse_args(['--smoke', '--tasks', 'cls', '--out', str(tmp_path)]))
    configs = (str(config), 'the student is not used')
    for _ in range(2):
        assert matrix.teacher_run(opts, 'cls', 'p', configs, {})['metric'] == 50.0
    assert len(trained) == 1  # the second call read the cache
    quieter = pnp.resolve(pnp.parse_args(['--smoke', '--tasks', 'cls', '--out', str(tmp_path),
                                          '--workers', '2', '--verbose']))
    matrix.teacher_run(quieter, 'cls', 'p', configs, {})
    assert len(trained) == 1  # workers and logging do not change what is trained
    config.write_text(f'_base_ = {base!r}\noptim_wrapper = dict(optimizer=dict(lr=2e-3))\n')
    matrix.teacher_run(opts, 'cls', 'p', configs, {})
    assert len(trained) == 2
    assert 'trained with another config or options' in capsys.readouterr().out


def test_a_teacher_cached_before_configs_were_recorded_is_kept_and_said(tmp_path, capsys):
    folder = tmp_path / 'tmp' / 'teachers' / 'cls' / 'p_2it'
    folder.mkdir(parents=True)
    (folder / 'iter_2.pth').write_bytes(b'')
    (folder / 'teacher.json').write_text(json.dumps(dict(
        checkpoint=str(folder / 'iter_2.pth'), metric=40.0, seconds=1.0, iters=2,
        metric_bf16=None)))
    opts = pnp.resolve(pnp.parse_args(['--smoke', '--tasks', 'cls', '--out', str(tmp_path)]))
    config = osp.join(matrix.REPO, 'configs', 'quickstart', 'teacher.py')
    assert matrix.teacher_run(opts, 'cls', 'p', (config, 'unused'), {})['metric'] == 40.0
    assert 'written before its config was recorded: kept' in capsys.readouterr().out
    assert json.loads((folder / 'teacher.json').read_text())['config_sha']


# ------------------------------------------------------- one lookup: the profile's resolved entry
def overriding_profile(tmp_path):
    """The smoke profile with the classification metric and the KD recipe replaced."""
    path = tmp_path / 'override.py'
    path.write_text(f"_base_ = {osp.join(matrix.PROFILES_DIR, 'smoke.py')!r}\n"
                    "tasks = dict(cls=dict(metric='cls/top5', losses=dict(\n"
                    "    KD='configs/cls/dist_swin-t_to_r18_cifar100.py')))\n")
    return str(path)


def test_every_task_setting_comes_from_the_profiles_resolved_entry(tmp_path, monkeypatch):
    calls = []

    def fake_train_run(config, folder, options, metric, scale=1.0, **kwargs):
        calls.append(dict(options=options, metric=metric))
        os.makedirs(folder, exist_ok=True)
        return SimpleNamespace(iter=2), SimpleNamespace(
            last=1.0, seconds=1.0, iters=2, iter_s=0.1, init_sha='', batches_sha='')

    monkeypatch.setattr(matrix, 'train_run', fake_train_run)
    monkeypatch.setattr(matrix, 'step_costs', lambda *args: {})
    opts = matrix.resolve(overriding_profile(tmp_path), tasks='cls', out=str(tmp_path / 'out'))
    pair, configs = next(iter(opts.task['cls'].pairs.items()))
    teacher = matrix.teacher_run(opts, 'cls', pair, configs, {})
    matrix.student_run(opts, 'cls', pair, configs, 'KD', 0, {}, teacher)
    assert [c['metric'] for c in calls] == ['cls/top5', 'cls/top5']  # teacher, student
    p = matrix.probe_pair('cls', tuple(configs), 2)
    dist = matrix.recipe(osp.join(matrix.REPO, 'configs/cls/dist_swin-t_to_r18_cifar100.py'), p)
    assert calls[1]['options']['distill_cfg']['losses'] == dist['losses']  # the profile's KD


def test_run_options_take_the_batch_of_their_task(tmp_path):
    opts = matrix.resolve('smoke', tasks='cls', out=str(tmp_path))
    assert (opts.batch['cls'], opts.batch['seg']) == (8, 2)
    config = opts.task['cls'].pairs['tiny-vit_to_tiny-resnet'][1]
    for task in ('cls', 'seg'):
        options = matrix.run_options(opts, task, config, 2, 0)
        assert options['train_dataloader.batch_size'] == opts.batch[task]


# --------------------------------------------------------------------------------- model labels
CPU_LABELS = {
    ('cls', 'resnet10t_to_vit'): ('ResNet/resnet10t (output stride 16)',
                                  'ViT/vit_tiny_patch16_224 (patch 8, depth 4, width 128)'),
    ('cls', 'vit_to_test-resnet'): ('ViT/vit_tiny_patch16_224 (patch 4, depth 6, width 192)',
                                    'ResNet/test_resnet'),
    ('seg', 'swin-upernet_to_r18-pspnet'): (
        'UPerNet/Swin (patch 4, window 4, width 32, depths 2-2-2-2)',
        'PSPNet/ResNetV1c-18 (width 16, output stride 8)'),
    ('det', 'swin-retinanet_to_r18-retinanet'): (
        'RetinaNet/Swin (window 4, width 48, depths 2-2-2-2)', 'RetinaNet/ResNet-18'),
}


@pytest.mark.parametrize('task, pair', sorted(CPU_LABELS))
def test_labels_name_the_models_type_and_options(task, pair):
    from kdzoo.experiments.labels import config_label
    if task != 'cls':
        pytest.importorskip({'seg': 'mmseg', 'det': 'mmdet'}[task])
    configs = matrix.load_profile('cpu')['tasks'][task].pairs[pair]
    labels = tuple(config_label(c, matrix.REPO) for c in configs)
    assert labels == CPU_LABELS[task, pair]
    assert not any(label.endswith('-') or '-)' in label for label in labels)


def test_relabel_changes_the_label_columns_only_and_once(tmp_path):
    pytest.importorskip('mmseg')
    pytest.importorskip('mmdet')
    committed = osp.join(matrix.REPO, 'results', 'cpu', pnp.CSV_NAME)
    old = tmp_path / pnp.CSV_NAME
    rows = read_rows(committed)
    with open(committed, newline='') as f:
        header = f.readline().strip().split(',')
    for row in rows:  # the labels as the CSV had them before the migration
        row['teacher'], row['student'] = {
            'seg': ('EncoderDecoder/SwinTransformer-', 'EncoderDecoder/ResNetV1c-18'),
            'det': ('RetinaNet/SwinTransformer-', 'RetinaNet/ResNet-18'),
            'cls': (row['teacher'].split('/')[-1].split(' ')[0],
                    row['student'].split('/')[-1].split(' ')[0])}[row['task']]
    from kdzoo.experiments.rows import rewrite_rows
    rewrite_rows(str(old), header, rows)
    assert matrix.relabel(str(tmp_path), 'cpu') == len(rows)
    after = read_rows(str(old))
    assert [{k: v for k, v in r.items() if k not in ('teacher', 'student')} for r in after] == \
        [{k: v for k, v in r.items() if k not in ('teacher', 'student')} for r in rows]
    assert {(r['task'], r['pair']): (r['teacher'], r['student']) for r in after} == CPU_LABELS
    relabelled = old.read_bytes()
    assert relabelled == open(committed, 'rb').read()  # the committed CSV is migrated already
    assert matrix.relabel(str(tmp_path), 'cpu') == 0 and old.read_bytes() == relabelled


def test_teacher_bf16_sets_the_models_teacher_autocast():
    model = torch.nn.Linear(1, 1)
    model.teacher_autocast = None  # the distilling model's attribute (adapters/base.py)
    matrix.teacher_in_bf16(SimpleNamespace(model=model))
    assert model.teacher_autocast is torch.bfloat16
    with pytest.raises(TypeError, match='no teacher_autocast attribute'):
        matrix.teacher_in_bf16(SimpleNamespace(model=torch.nn.Linear(1, 1)))
