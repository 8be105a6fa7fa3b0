"""kdzoo plug-and-play (tools/plug_and_play.py) and its engine, kdzoo.experiments.matrix: the
--smoke matrix writes finite CSV rows, the markdown and the PNG; a rerun skips every row; every
classification loss entry builds and gives finite losses; the schedule is rescaled to the
iterations; a task whose adapter does not import fails clearly; a cached teacher is trained again
when its config changed; every task setting comes from the profile's resolved entry; the model
labels name type and options, and the relabel migration of an old CSV changes those labels only,
once."""
import json
import math
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch

from kdzoo.commands import plug_and_play as pnp
from kdzoo.experiments import matrix, matrix_report
from kdzoo.experiments.rows import append_row, read_rows
from kdzoo.schedule import rescaled_schedule

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
        student=Config.fromfile(f'{matrix.ROOT}/{student}').model,
        distill_cfg=dict(teacher=dict(config=f'{matrix.ROOT}/{teacher}'),
                         **matrix.recipe_of(matrix.load_profile('gpu')['tasks']['cls'], loss, p)))
    torch.manual_seed(0)
    losses = model(torch.rand(4, 3, 32, 32) * 255, torch.tensor([0, 1, 2, 3]), mode='loss')
    distill = [k for k in losses if k.startswith('distill.loss_')]
    assert distill and all(torch.isfinite(v) for v in losses.values())


def test_schedule_is_rescaled_to_the_iterations():
    from mmengine.config import Config
    cfg = Config.fromfile(f'{matrix.ROOT}/configs/plug_and_play/cls/r18.py')
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
            student=Config.fromfile(f'{matrix.ROOT}/{student}').model,
            distill_cfg=dict(teacher=dict(config=f'{matrix.ROOT}/{teacher}'),
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
    base = osp.join(matrix.ROOT, 'configs', 'quickstart', 'teacher.py')
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


def fake_teacher_training(monkeypatch, trained, metric=50.0):
    """``matrix.train_run`` replaced by one that writes a teacher checkpoint (bytes of its call
    count) and records the call."""
    def fake_train_run(config, folder, options, metric_key, scale):
        trained.append(config)
        os.makedirs(folder, exist_ok=True)
        with open(osp.join(folder, 'iter_2.pth'), 'w') as f:
            f.write(str(len(trained)))
        return SimpleNamespace(iter=2), SimpleNamespace(last=metric, seconds=1.0)
    monkeypatch.setattr(matrix, 'train_run', fake_train_run)


def test_a_teacher_cached_before_fingerprints_is_trained_again_and_said(tmp_path, capsys,
                                                                       monkeypatch):
    # issue 23: a cache written before its config was recorded is never reused (it was kept,
    # taken as trained with the config as it is now)
    folder = tmp_path / 'tmp' / 'teachers' / 'cls' / 'p_2it'
    folder.mkdir(parents=True)
    (folder / 'iter_2.pth').write_bytes(b'')
    (folder / 'teacher.json').write_text(json.dumps(dict(
        checkpoint=str(folder / 'iter_2.pth'), metric=40.0, seconds=1.0, iters=2,
        metric_bf16=None)))
    trained = []
    fake_teacher_training(monkeypatch, trained)
    opts = pnp.resolve(pnp.parse_args(['--smoke', '--tasks', 'cls', '--out', str(tmp_path)]))
    config = osp.join(matrix.ROOT, 'configs', 'quickstart', 'teacher.py')
    assert matrix.teacher_run(opts, 'cls', 'p', (config, 'unused'), {})['metric'] == 50.0
    assert len(trained) == 1
    assert 'written before its config was recorded: not reused, training it again' in \
        capsys.readouterr().out
    record = json.loads((folder / 'teacher.json').read_text())
    assert record['config_sha'] and record['checkpoint_sha']


def test_a_cached_teacher_whose_checkpoint_bytes_changed_is_trained_again(tmp_path, capsys,
                                                                          monkeypatch):
    trained = []
    fake_teacher_training(monkeypatch, trained)
    opts = pnp.resolve(pnp.parse_args(['--smoke', '--tasks', 'cls', '--out', str(tmp_path)]))
    config = osp.join(matrix.ROOT, 'configs', 'quickstart', 'teacher.py')
    record = matrix.teacher_run(opts, 'cls', 'p', (config, 'unused'), {})
    matrix.teacher_run(opts, 'cls', 'p', (config, 'unused'), {})
    assert len(trained) == 1  # cached
    with open(record['checkpoint'], 'w') as f:
        f.write('another teacher')
    matrix.teacher_run(opts, 'cls', 'p', (config, 'unused'), {})
    assert len(trained) == 2
    assert 'has other bytes than when it was trained: training it again' in \
        capsys.readouterr().out


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
        open(osp.join(folder, 'iter_2.pth'), 'w').close()  # the teacher's checkpoint
        return SimpleNamespace(iter=2), SimpleNamespace(
            last=1.0, seconds=1.0, iters=2, iter_s=0.1, init_sha='', batches_sha='')

    monkeypatch.setattr(matrix, 'train_run', fake_train_run)
    monkeypatch.setattr(matrix, 'make_runner', lambda *args: None)  # the timing's fresh model
    monkeypatch.setattr(matrix, 'step_costs', lambda *args: {})
    opts = matrix.resolve(overriding_profile(tmp_path), tasks='cls', out=str(tmp_path / 'out'))
    pair, configs = next(iter(opts.task['cls'].pairs.items()))
    teacher = matrix.teacher_run(opts, 'cls', pair, configs, {})
    matrix.student_run(opts, 'cls', pair, configs, 'KD', 0, {}, teacher)
    assert [c['metric'] for c in calls] == ['cls/top5', 'cls/top5']  # teacher, student
    p = matrix.probe_pair('cls', tuple(configs), 2)
    dist = matrix.recipe(osp.join(matrix.ROOT, 'configs/cls/dist_swin-t_to_r18_cifar100.py'), p)
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
    labels = tuple(config_label(c, matrix.ROOT) for c in configs)
    assert labels == CPU_LABELS[task, pair]
    assert not any(label.endswith('-') or '-)' in label for label in labels)


def test_relabel_changes_the_label_columns_only_and_once(tmp_path):
    pytest.importorskip('mmseg')
    pytest.importorskip('mmdet')
    committed = osp.join(REPO, 'results', 'cpu', pnp.CSV_NAME)
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


# ------------------------------------ reuse keyed by the fingerprint, crash-safe CSV (issue 23)
def fake_runs(monkeypatch):
    """Every training run replaced by a record of its folder (the teacher's writes a checkpoint),
    its timing by nothing (no model is built for it); returns that list."""
    calls = []

    def fake_train_run(config, folder, options, metric, scale=1.0, **kwargs):
        calls.append(folder)
        os.makedirs(folder, exist_ok=True)
        with open(osp.join(folder, 'iter_2.pth'), 'w') as f:
            f.write('teacher')
        return SimpleNamespace(iter=2), SimpleNamespace(
            last=float(len(calls)), seconds=1.0, iters=2, iter_s=0.1, init_sha='',
            batches_sha='')

    monkeypatch.setattr(matrix, 'train_run', fake_train_run)
    monkeypatch.setattr(matrix, 'make_runner', lambda *args: None)
    monkeypatch.setattr(matrix, 'step_costs', lambda *args: {})
    return calls


def profile_with(tmp_path, text):
    path = tmp_path / 'changed.py'
    path.write_text(f"_base_ = {osp.join(matrix.PROFILES_DIR, 'smoke.py')!r}\n{text}\n")
    return str(path)


def test_matrix_rows_carry_their_fingerprint_and_a_rerun_reuses_them(tmp_path, monkeypatch):
    calls = fake_runs(monkeypatch)
    args = ['--smoke', '--tasks', 'cls', '--pairs', 'tiny-vit_to_tiny-resnet', '--out',
            str(tmp_path)]
    first = pnp.main(args)
    rows = rows_of(tmp_path)
    assert len(first['done']) == len(rows) == 2 and len(calls) == 3  # teacher, none, MSDCRD
    parts = [dict(p.split('=', 1) for p in r['fingerprint_parts'].split()) for r in rows]
    assert [sorted(p) for p in parts] == [['budget', 'config', 'data', 'metric', 'teacher']] * 2
    assert parts[0]['teacher'] == 'none' and parts[1]['teacher'] != 'none'
    assert all(r['fingerprint'] and r['row_sha'] for r in rows)
    again = pnp.main(args)
    assert again['done'] == [] and len(again['skipped']) == 2 and len(calls) == 3


@pytest.mark.parametrize('task, change, differs', [
    ('cls', "tasks = dict(cls=dict(metric='cls/top5'))", 'metric cls/top1*1 vs cls/top5*1'),
    ('seg', 'tasks = dict(seg=dict(data=dict(images=(6, 2))))',
     'the data differ (files or their sizes)'),
])
def test_a_matrix_row_of_another_setup_stops_before_training(tmp_path, monkeypatch, task,
                                                              change, differs):
    if task == 'seg':
        pytest.importorskip('mmseg')
    calls = fake_runs(monkeypatch)
    args = ['--tasks', task, '--losses', 'none', '--out', str(tmp_path)]
    pnp.main(['--smoke'] + args)
    before, trained = (tmp_path / pnp.CSV_NAME).read_bytes(), len(calls)
    with pytest.raises(SystemExit) as err:
        pnp.main(['--profile', profile_with(tmp_path, change)] + args)
    message = str(err.value)
    assert message.startswith(f'plug-and-play: {tmp_path} holds results of another setup: ')
    assert f"What differs (the CSV's vs this run's): {differs}." in message
    assert message.endswith('give this run a new --out.')
    assert len(calls) == trained and (tmp_path / pnp.CSV_NAME).read_bytes() == before


def test_legacy_matrix_rows_are_run_again_and_reported_as_legacy(tmp_path, monkeypatch, capsys):
    from kdzoo.experiments.matrix_report import COLUMNS
    calls = fake_runs(monkeypatch)
    path = str(tmp_path / pnp.CSV_NAME)
    legacy_columns = COLUMNS[:COLUMNS.index('finished') + 1]
    common = dict(task='cls', pair='tiny-vit_to_tiny-resnet', seed=0, budget='2it',
                  metric_name='cls/top1', metric=-9.0, device='cpu',
                  finished='2026-12-01 10:00:00')
    append_row(path, legacy_columns, dict(common, loss='none', teacher_iters='-',
                                          teacher_dtype='-'))
    append_row(path, legacy_columns, dict(common, loss='MSDCRD', teacher_iters=2,
                                          teacher_dtype='fp32'))
    summary = pnp.main(['--smoke', '--tasks', 'cls', '--pairs', 'tiny-vit_to_tiny-resnet',
                        '--out', str(tmp_path)])
    assert len(summary['done']) == 2 and not summary['skipped'] and len(calls) == 3
    rows = read_rows(path)
    assert [bool(r['fingerprint']) for r in rows] == [False, False, True, True]
    assert float(rows[3]['student_alone_metric']) != -9.0  # the legacy row is not used
    md = (tmp_path / matrix_report.MD_NAME).read_text()
    assert '(4 runs, 2 of them legacy)' in md
    assert '2 legacy row(s) of this setting (written before rows carried their fingerprint)' in md


def test_a_legacy_only_setting_is_shown_marked_legacy(tmp_path):
    from kdzoo.experiments.matrix_report import COLUMNS, LEGACY_NOTE, write_report
    legacy_columns = COLUMNS[:COLUMNS.index('finished') + 1]
    path = str(tmp_path / pnp.CSV_NAME)
    for loss, metric in (('none', 20.0), ('KD', 22.0)):
        append_row(path, legacy_columns, dict(task='cls', pair='p', loss=loss, seed=0,
                                              budget='500it', metric=metric,
                                              metric_name='cls/top1', teacher_metric=60,
                                              teacher_iters=600, teacher_dtype='fp32',
                                              finished='2026-12-01 10:00:00'))
    text = open(write_report(str(tmp_path))[0]).read()
    assert LEGACY_NOTE in text and '| KD | 1/1 | 22.00 ± 0.00 | 2.00 ± 0.00 |' in text


def test_a_cut_matrix_row_is_named_removed_and_run_again(tmp_path, monkeypatch, capsys):
    calls = fake_runs(monkeypatch)
    args = ['--smoke', '--tasks', 'cls', '--pairs', 'tiny-vit_to_tiny-resnet', '--out',
            str(tmp_path)]
    pnp.main(args)
    path = tmp_path / pnp.CSV_NAME
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(''.join(lines[:-1]) + lines[-1][:80])
    capsys.readouterr()
    summary = pnp.main(args)
    out = capsys.readouterr().out
    assert f'{path}, line 3: not a whole row (' in out and 'its run is done again' in out
    assert len(summary['done']) == 1 and len(summary['skipped']) == 1 and len(calls) == 4
    from kdzoo.experiments.rows import scan
    assert not scan(str(path))[2] and len(read_rows(str(path))) == 2


def test_a_second_matrix_run_on_the_same_out_stops_naming_the_running_one(tmp_path):
    import fcntl
    lock = tmp_path / 'tmp' / matrix.LOCK_NAME
    lock.parent.mkdir(parents=True)
    with open(lock, 'a+') as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write('pid 4242: tools/plug_and_play.py --profile cpu\n')
        held.flush()
        with pytest.raises(SystemExit) as err:
            pnp.main(['--smoke', '--tasks', 'cls', '--out', str(tmp_path)])
    assert str(err.value) == (
        f'plug-and-play: another run is using {tmp_path} (pid 4242: tools/plug_and_play.py '
        f'--profile cpu; lock file {lock}). Wait for it to finish, or give this run another '
        'folder')
    assert not (tmp_path / pnp.CSV_NAME).exists()


@pytest.mark.parametrize('bad, says', [
    (['--iters', '0'], 'argument --iters: 0: give a number >= 1'),
    (['--teacher-iters', '-5'], 'argument --teacher-iters: -5: give a number >= 1'),
    (['--seeds', '0'], 'argument --seeds: 0: give a number >= 1'),
    (['--budget-s', '-1'], 'argument --budget-s: -1: give a number >= 0.0'),
])
def test_zero_and_negative_matrix_budgets_are_refused_before_anything_runs(tmp_path, capsys,
                                                                          bad, says):
    with pytest.raises(SystemExit) as err:
        pnp.main(['--smoke', '--out', str(tmp_path / 'out')] + bad)
    assert err.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


# --------------------------------------------- --retime: the step costs of existing rows (issue 24)
def keep(row):
    """A row's fields that --retime must leave as they are."""
    return {k: v for k, v in row.items()
            if k not in matrix_report.STEP_COLUMNS + ('timed', 'row_sha')}


def test_retime_rewrites_only_the_step_costs_marks_the_rows_and_keeps_their_checksums(
        tmp_path, monkeypatch, capsys):
    from kdzoo.experiments.rows import scan
    fake_runs(monkeypatch)
    args = ['--smoke', '--tasks', 'cls', '--pairs', 'tiny-vit_to_tiny-resnet', '--out',
            str(tmp_path)]
    pnp.main(args + ['--seeds', '2'])
    monkeypatch.undo()  # real models and timing from here
    before = rows_of(tmp_path)
    assert len(before) == 4 and {(r['loss'], r['timed']) for r in before} == {
        ('none', matrix_report.AFTER_TRAINING), ('MSDCRD', matrix_report.CACHED_RUN)}
    capsys.readouterr()
    summary = pnp.main(args + ['--retime', '--timing-repeats', '2'])
    after = rows_of(tmp_path)
    assert summary['timings'] == 2 and sorted(summary['retimed']) == sorted(map(
        matrix_report.key_of, before))
    assert not scan(str(tmp_path / pnp.CSV_NAME))[2] and len(after) == 4  # every checksum whole
    assert [keep(r) for r in after] == [keep(r) for r in before]
    device = pnp.resolve(pnp.parse_args(args)).device_name
    for row in after:
        assert row['timed'].startswith('retimed 20') and row['timed'].endswith(f' on {device}')
        assert float(row['student_step_s']) > 0 and float(row['load_per_core']) >= 0
        if row['loss'] == 'none':
            assert row['teacher_forward_s'] == row['step_ratio'] == ''
            continue
        student, teacher, step = (float(row[k]) for k in (
            'student_step_s', 'teacher_forward_s', 'distill_step_s'))
        assert float(row['step_ratio']) == pytest.approx(step / (student + teacher), rel=1e-8)
        assert 0 < float(row['loss_share']) < 1
    timings = {r['loss']: {tuple(x[c] for c in matrix_report.STEP_COLUMNS) for x in after
                           if x['loss'] == r['loss']} for r in after}
    assert all(len(t) == 1 for t in timings.values())  # the seeds of a loss share its timing
    out = capsys.readouterr().out
    assert ('[cls/tiny-vit_to_tiny-resnet] MSDCRD, teacher fp32, 2it, seeds 0, 1: student step '
            in out) and 'step ratio' in out and 'loss share' in out
    md = (tmp_path / matrix_report.MD_NAME).read_text()
    assert (f'Step costs re-timed {after[0]["timed"][len("retimed "):]}: 4 runs, '
            'cls/tiny-vit_to_tiny-resnet (4), by `tools/plug_and_play.py --retime`') in md


def stub_timing(monkeypatch):
    """--retime's models and timing replaced: a student-alone run times 0.1 s, a distilled one
    the costs below."""
    monkeypatch.setattr(matrix, 'make_runner', lambda config, work_dir, options: SimpleNamespace(
        distilled='distill_cfg' in options))
    monkeypatch.setattr(matrix, 'step_costs', lambda runner, repeats, device: dict(
        student_step_s=0.1, load_per_core=0.5, **(dict(
            teacher_forward_s=0.05, distill_step_s=0.2, loss_s=0.002, step_ratio=0.2 / 0.15,
            loss_share=0.01) if runner.distilled else {})))


def test_retime_of_an_older_csv_adds_the_timed_column_and_the_report_says_how_each_was_timed(
        tmp_path, monkeypatch):
    from kdzoo.experiments.matrix_report import EARLIER_METHOD, write_report
    from kdzoo.experiments.rows import read_header, rewrite_rows
    # the committed CSV's columns before the re-timing added 'timed' (written before row_sha too)
    header = [c for c in read_header(osp.join(REPO, 'results', 'cpu', pnp.CSV_NAME))
              if c != 'timed']
    assert 'row_sha' not in header
    common = dict(task='cls', pair='tiny-vit_to_tiny-resnet', teacher='T', student='S', seed='0',
                  budget='2it', iters='2', metric_name='cls/top1', teacher_metric='60',
                  train_s='1', iter_s='0.5', student_step_s='0.3', load_per_core='1.1',
                  device='cpu', finished='2026-12-01 10:00:00')
    path = str(tmp_path / pnp.CSV_NAME)
    rewrite_rows(path, header, [
        dict(common, loss='none', teacher_iters='-', teacher_dtype='-', metric='20', gain='0'),
        dict(common, loss='MSDCRD', teacher_iters='2', teacher_dtype='fp32', metric='22',
             gain='2', teacher_forward_s='0.2', distill_step_s='0.6', loss_s='0.01',
             step_ratio='1.2', loss_share='0.0166')])
    before = read_rows(path)
    md = open(write_report(str(tmp_path))[0]).read()
    assert (f'Step costs of 2 runs were timed by an earlier method ({EARLIER_METHOD}): not '
            'comparable') in md
    stub_timing(monkeypatch)
    summary = pnp.main(['--smoke', '--out', str(tmp_path), '--retime'])
    assert summary['timings'] == 2
    assert read_header(path) == [c for c in matrix_report.COLUMNS if c in header or c == 'timed']
    after = read_rows(path)
    assert [keep(r) for r in after] == [keep(r) for r in before]
    assert [(r['student_step_s'], r['distill_step_s'], r['step_ratio']) for r in after] == [
        ('0.1', '', ''), ('0.1', '0.2', '1.333333333')]
    md = (tmp_path / matrix_report.MD_NAME).read_text()
    assert 'Step costs re-timed ' in md and EARLIER_METHOD not in md


def retime_with_row_1_changed(tmp_path, monkeypatch, capsys, **changes):
    """A smoke matrix of one pair, its row 1 given ``changes``, then re-timed (stub timing):
    ``(summary, the rows before, the rows after, what it printed)``."""
    from kdzoo.experiments.rows import read_header, rewrite_rows
    fake_runs(monkeypatch)
    args = ['--smoke', '--tasks', 'cls', '--pairs', 'tiny-vit_to_tiny-resnet', '--out',
            str(tmp_path)]
    pnp.main(args)
    path = str(tmp_path / pnp.CSV_NAME)
    rows = read_rows(path)
    rows[1].update(changes)
    rewrite_rows(path, read_header(path), rows)
    before = read_rows(path)
    stub_timing(monkeypatch)
    capsys.readouterr()
    summary = pnp.main(args + ['--retime'])
    return summary, before, read_rows(path), capsys.readouterr().out


def test_retime_leaves_a_row_made_by_another_setup_and_says_so(tmp_path, monkeypatch, capsys):
    # as if the recipe had changed since
    summary, before, after, out = retime_with_row_1_changed(tmp_path, monkeypatch, capsys,
                                                            fingerprint='f' * 16)
    assert summary['retimed'] == [matrix_report.key_of(before[0])]
    assert after[1] == before[1]
    assert (f'retime: {" ".join(matrix_report.key_of(before[1]))} was made by another setup than '
            f"the profile's configs give now (fingerprint {'f' * 16}, now ") in out


def test_retime_leaves_a_row_run_on_another_kind_of_device(tmp_path, monkeypatch, capsys):
    summary, before, after, out = retime_with_row_1_changed(tmp_path, monkeypatch, capsys,
                                                            device='cuda (NVIDIA H200)')
    assert summary['retimed'] == [matrix_report.key_of(before[0])]
    assert after[1] == before[1]
    assert (f'retime: {" ".join(matrix_report.key_of(before[1]))} was run on cuda (NVIDIA H200), '
            'this timing would be on cpu: not re-timed') in out


@pytest.mark.parametrize('extra, says', [
    (['--iters', '5'], '--retime takes the seeds, budget and teacher precision from each row of '
                       'the CSV: drop --iters'),
    (['--report-only'], 'argument --report-only: not allowed with argument --retime'),
])
def test_retime_refuses_what_each_row_says(tmp_path, capsys, extra, says):
    with pytest.raises(SystemExit) as err:
        pnp.main(['--smoke', '--out', str(tmp_path), '--retime'] + extra)
    assert err.value.code == 2 and says in capsys.readouterr().err


def test_the_distilled_arms_of_a_pair_and_seed_share_one_teacher_cache(tmp_path, monkeypatch):
    """With the cache (the default) the teacher runs in the training steps of the first distilled
    arm of each (pair, seed) only, and every metric column and fingerprint is the one of the
    matrix run without it (--no-teacher-cache)."""
    from kdzoo.hooks.teacher_cache import TeacherCacheHook
    from kdzoo.wrappers import unwrap
    counts = []
    after_train = TeacherCacheHook.after_train

    def recorded(hook, runner):
        after_train(hook, runner)
        cache = unwrap(runner.model).teacher_caches['teacher']
        counts.append((osp.relpath(cache.dir, tmp_path), dict(cache.counts)))
    monkeypatch.setattr(TeacherCacheHook, 'after_train', recorded)
    args = ['--smoke', '--tasks', 'cls', '--pairs', 'tiny-vit_to_tiny-resnet', '--seeds', '2',
            '--losses', 'MSDCRD,KD']
    pnp.main(args + ['--out', str(tmp_path / 'cached')])
    samples = 2 * 8  # iterations x batch
    folders = [folder for folder, _ in counts]
    assert [c for _, c in counts] == [dict(read=0, computed=samples, written=samples),
                                      dict(read=samples, computed=0, written=0)] * 2
    assert folders[0] == folders[1] and folders[2] == folders[3] and folders[0] != folders[2]
    assert folders[0].startswith(osp.join('cached', 'tmp', 'teacher_cache', 'cls',
                                          'tiny-vit_to_tiny-resnet_2it', ''))
    assert folders[0].endswith('seed0') and folders[2].endswith('seed1')
    counts.clear()
    pnp.main(args + ['--out', str(tmp_path / 'live'), '--no-teacher-cache'])
    assert counts == []  # no run opened a cache
    cached, live = rows_of(tmp_path / 'cached'), rows_of(tmp_path / 'live')
    columns = ('task', 'pair', 'loss', 'seed', 'iters', 'metric', 'teacher_metric',
               'student_alone_metric', 'gain', 'init_sha', 'batches_sha', 'fingerprint')
    assert len(cached) == 6
    assert [[r[c] for c in columns] for r in cached] == [[r[c] for c in columns] for r in live]
    # the step costs of a cached arm are those of its live step, timed on a fresh model
    assert all(float(r['step_ratio']) > 0 for r in cached if r['loss'] != 'none')


def test_the_run_ratio_leaves_out_runs_that_used_the_teacher_cache():
    """A run reading the shared teacher cache skips the teacher in its iterations: its iteration
    time over (student alone + teacher step) is no cost of the method, so it is not averaged."""
    alone = dict(seed='0', iter_s='0.1', load_per_core='0.1')
    live = dict(seed='0', iter_s='0.3', teacher_forward_s='0.1', step_ratio='1.0',
                loss_share='0.01', load_per_core='0.1', timed=matrix_report.AFTER_TRAINING)
    cached = dict(live, iter_s='0.1', timed=matrix_report.CACHED_RUN)
    assert matrix_report.step_cost_cells([live, cached], {'0': alone})[1] == '1.500'
    assert matrix_report.step_cost_cells([cached], {'0': alone})[1] == 'nan †'
