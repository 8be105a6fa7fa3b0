"""tools/analyze.py: the similarity map, CSV and heatmap of a tiny classification pair, init and
trained; the snippet it prints builds and runs with tools/train.py --dry-run when written at the
end of a copy of the config (a config that defines distill_cfg and one that inherits it); a
config with two teachers (distill_cfg.teachers) mapped teacher by teacher, each map the one of
that teacher alone, its snippet naming the teachers; seg and det runs on generated data; missing
inputs named with the command that makes them."""
import contextlib
import csv
import io
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from tools_helpers import NUM_CLASSES, REPO, TEACHER, runner_config, write_config

PNG = b'\x89PNG\r\n\x1a\n'


def snippet_of(out):
    """The printed snippet: from its first comment line to the closing parenthesis."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('# kdzoo analyze '))
    end = next(i for i in range(start, len(lines)) if lines[i] == ')')
    return '\n'.join(lines[start:end + 1])


def dry_run_with(config, text, copy):
    """Write ``config`` + ``text`` to ``copy`` and run tools/train.py --dry-run on it."""
    from tools.train import main
    with open(config) as f, open(copy, 'w') as g:
        g.write(f.read() + '\n' + text + '\n')
    return main([str(copy), '--dry-run'])


@pytest.fixture(scope='module')
def cls_config(shapes_data, teacher_checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp('analyze_cls')
    distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint), losses=[
        dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))])
    return write_config(root / 'pair.py', runner_config(shapes_data, root / 'work',
                                                        distill_cfg=distill_cfg)), root


@pytest.fixture(scope='module')
def cls_run(cls_config):
    """tools/train.py on the pair (2 iterations), then tools/analyze.py with its checkpoint."""
    from tools.analyze import main
    from tools.train import main as train
    config, root = cls_config
    train([config])
    checkpoint = str(root / 'work' / 'iter_2.pth')
    out = root / 'analyze'
    result = main([config, '--checkpoint', checkpoint, '--batches', '2', '--batch-size', '4',
                   '--out', str(out)])
    return config, root, out, result


def test_cls_writes_csv_png_and_matches_init_and_trained(cls_run, capsys):
    config, _, out, (sims, items, _) = cls_run
    assert open(out / 'similarity.png', 'rb').read(8) == PNG
    with open(out / 'similarity.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    names = ['stage1', 'stage2', 'stage3', 'stage4', 'logits']
    assert [s.weights for s in sims] == ['init', 'trained']
    assert len(rows) == 2 * 25 and {r['weights'] for r in rows} == {'init', 'trained'}
    for sim in sims:
        assert sim.teacher == sim.student == names and sim.images == 8 and sim.batches == 2
        assert sim.cka.shape == (5, 5) and bool(((sim.cka > -1) & (sim.cka <= 1)).all())
        assert 0 <= sim.agreement <= 1 and sim.kl >= 0
    logit_rows = [r for r in rows if r['teacher'] == r['student'] == 'logits']
    assert all(r['top1_agreement'] and r['kl_teacher_student'] for r in logit_rows)
    assert not any(r['top1_agreement'] for r in rows if r['teacher'] != 'logits')
    # the student changed between the panels (two iterations of training), the teacher did not
    assert not torch.equal(sims[0].cka, sims[1].cka)
    assert [(e['student'], e['loss']['type']) for e, _ in items] == [
        ('stage1', 'LFCCLoss'), ('stage2', 'LFCCLoss'), ('stage3', 'LFCCLoss'),
        ('stage4', 'LFCCLoss'), ('logits', 'KDLoss')]
    teachers = [int(e['teacher'][-1]) for e, _ in items[:4]]
    assert teachers == sorted(teachers)  # order-preserving


def test_cls_snippet_passes_the_dry_run_in_a_copy_of_the_config(cls_config, capsys):
    from tools.analyze import main
    config, root = cls_config
    main([config, '--batches', '1', '--out', str(root / 'init_only')])
    out = capsys.readouterr().out
    assert 'student at initialisation' in out and 'student trained' not in out
    text = snippet_of(out)
    assert text.splitlines()[0] == (f'# kdzoo analyze {config}: each student stage matched with '
                                    'a teacher stage,')
    assert text.splitlines()[3] == 'distill_cfg.update('  # the config defines distill_cfg
    runner = dry_run_with(config, text, root / 'pair_suggested.py')
    dry = capsys.readouterr().out
    items = runner.model.distiller.items
    assert [i.name for i in items] == ['lfcc_stage1', 'lfcc_stage2', 'lfcc_stage3',
                                       'lfcc_stage4', 'kd_logits']
    assert 'distill.loss_lfcc_stage1 = ' in dry and 'distill.loss_kd_logits = ' in dry
    # a config that inherits distill_cfg: the snippet assigns it and MMEngine merges
    child = root / 'child.py'
    child.write_text("_base_ = './pair.py'\n")
    main([str(child), '--batches', '1', '--out', str(root / 'child_out')])
    text = snippet_of(capsys.readouterr().out)
    assert 'distill_cfg = dict(' in text
    runner = dry_run_with(str(child), text, root / 'child_suggested.py')
    assert len(runner.model.distiller.items) == 5


def test_checkpoint_of_the_student_alone_and_a_wrong_one(cls_config, shapes_data,
                                                        teacher_checkpoint):
    from kdzoo.checkpoint import CheckpointError
    from tools.analyze import main
    from tools.train import main as train
    config, root = cls_config
    alone = write_config(root / 'alone.py', runner_config(shapes_data, root / 'alone'))
    train([alone])
    sims, _, _ = main([config, '--checkpoint', str(root / 'alone' / 'iter_2.pth'), '--batches',
                       '1', '--out', str(root / 'alone_out')])
    assert [s.weights for s in sims] == ['init', 'trained']
    with pytest.raises(CheckpointError, match="does not hold this config's student"):
        main([config, '--checkpoint', teacher_checkpoint, '--out', str(root / 'wrong')])


def test_batches_are_a_fixed_shuffle_of_the_validation_set(cls_config):
    """Class-sorted folders: in order, a batch would hold one or two classes."""
    from mmengine.runner import Runner

    from kdzoo.commands.analyze import analysis_loader
    cfg = Config.fromfile(cls_config[0])
    labels = [[b['data_samples'].tolist() for b in Runner.build_dataloader(
        analysis_loader(cfg, 4))] for _ in range(2)]
    assert labels[0] == labels[1] and sum(labels[0], []) != sorted(sum(labels[0], []))


def test_missing_inputs_are_named_with_the_command(tmp_path, monkeypatch):
    from tools.analyze import main
    monkeypatch.chdir(tmp_path)  # a fresh clone's root before the quick start
    with pytest.raises(SystemExit) as err:
        main([osp.join(REPO, 'configs', 'quickstart', 'msdcrd.py')])
    message = str(err.value)
    assert message.startswith('analyze: ') and 'data/quickstart/val' in message
    assert 'teacher checkpoint work_dirs/quickstart/teacher/iter_600.pth' in message
    assert 'kdzoo quickstart' in message


def test_batch_size_below_four_is_refused(cls_config):
    from tools.analyze import main
    with pytest.raises(SystemExit):
        main([cls_config[0], '--batch-size', '3'])


# --- two teachers: the pair's ConvNeXt and a ViT (another family) -------------------------------
VIT = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=NUM_CLASSES,
           img_size=64, patch_size=16, depth=2, embed_dim=48, num_heads=3)


@pytest.fixture(scope='module')
def two_teachers(cls_run, shapes_data, teacher_checkpoint):
    """tools/analyze.py with the pair's trained student (as cls_run) on a config distilling it from
    two teachers, ``cnn`` (the pair's teacher) and ``vit`` (random weights saved as a checkpoint),
    and on the config of the ViT alone; ``(config, root, {'two' | 'vit': (main's result, printed
    text, [figure])})``."""
    from kdzoo.commands import analyze
    from kdzoo.registry import build
    root = cls_run[1]
    torch.manual_seed(0)
    vit = build(VIT)
    vit.init_weights()
    torch.save({'state_dict': vit.state_dict()}, root / 'vit.pth')
    teachers = dict(cnn=dict(config=TEACHER, checkpoint=teacher_checkpoint),
                    vit=dict(config=VIT, checkpoint=str(root / 'vit.pth')))
    kd = dict(student='logits', loss=dict(type='KDLoss'))
    configs = dict(
        two=dict(teachers=teachers, losses=[dict(kd, teacher='cnn:logits', name='kd_cnn'),
                                            dict(kd, teacher='vit:logits', name='kd_vit')]),
        vit=dict(teacher=teachers['vit'], losses=[dict(kd, teacher='logits')]))
    runs = {}
    real = analyze.write_heatmap
    for name, distill_cfg in configs.items():
        path = write_config(root / f'{name}.py', runner_config(shapes_data, root / 'work',
                                                               distill_cfg=distill_cfg))
        figures, printed = [], io.StringIO()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
            patch.setattr(analyze, 'write_heatmap',
                          lambda *args: figures.append(real(*args)))
            result = analyze.main([path, '--checkpoint', str(root / 'work' / 'iter_2.pth'),
                                         '--batches', '2', '--batch-size', '4', '--out',
                                         str(root / f'{name}_out')])
        runs[name] = result, printed.getvalue(), figures
    return str(root / 'two.py'), root, runs


def test_two_teachers_give_one_panel_table_and_csv_block_per_teacher(two_teachers,
                                                                     teacher_checkpoint):
    _, root, runs = two_teachers
    (sims, _, _), printed, (figure,) = runs['two']
    assert [(s.weights, s.teacher_name) for s in sims] == [
        ('init', 'cnn'), ('init', 'vit'), ('trained', 'cnn'), ('trained', 'vit')]
    states = ['student at initialisation', 'student trained (iter_2.pth)']
    panels = [ax for ax in figure.axes if ax.get_title()]  # the colorbar has no title
    assert [ax.get_title().split('\n')[0] for ax in panels] == [
        f'teacher {name} x {state}' for name in ('cnn', 'vit') for state in states]
    assert [ax.get_ylabel() for ax in panels] == ['teacher cnn', '', 'teacher vit', '']
    for name in ('cnn', 'vit'):
        for state in states:
            assert f'linear CKA, rows: teacher {name}, columns: {state}; logits: ' in printed
    assert f'; teacher checkpoints: cnn {teacher_checkpoint}, vit {root}/vit.pth\n' in printed
    with open(root / 'two_out' / 'similarity.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    names = ['stage1', 'stage2', 'stage3', 'stage4', 'logits']
    assert len(rows) == 2 * 2 * 25
    assert sorted({r['teacher'] for r in rows}) == sorted(f'{t}:{n}' for t in ('cnn', 'vit')
                                                          for n in names)
    assert open(root / 'two_out' / 'similarity.png', 'rb').read(8) == PNG


def test_each_teachers_map_is_the_map_of_that_teacher_alone(cls_run, two_teachers):
    """Same student weights (init and the trained checkpoint), same images: the cnn maps are the
    single-teacher pair's (cls_run), the vit maps those of the config of the ViT alone."""
    sims = two_teachers[2]['two'][0][0]
    alone = dict(cnn=cls_run[3][0], vit=two_teachers[2]['vit'][0][0])
    for name, single in alone.items():
        assert [s.teacher_name for s in single] == [None, None]
        mine = [s for s in sims if s.teacher_name == name]
        for a, b in zip(mine, single):
            assert (a.weights, a.teacher, a.student, a.shapes, a.images) == (
                b.weights, b.teacher, b.student, b.shapes, b.images)
            assert torch.equal(a.cka, b.cka)
            assert (a.agreement, a.kl) == (b.agreement, b.kl)
    # the two teachers are not the same map
    assert not torch.equal(sims[0].cka, sims[1].cka)


def test_two_teachers_snippet_names_teachers_and_passes_the_dry_run(two_teachers, capsys):
    from kdzoo.distiller import parse_items
    config, root, runs = two_teachers
    (_, items, connectors), printed, _ = runs['two']
    entries = [entry for entry, _ in items]
    assert {entry['teacher'].split(':')[0] for entry in entries} == {'cnn', 'vit'}
    assert all(entry['name'].endswith(('_cnn', '_vit')) for entry in entries)
    assert all(name.endswith(('_cnn', '_vit')) for name in connectors)
    parsed = parse_items(entries, teachers=('cnn', 'vit'))
    assert [item.sources[0][0] for item in parsed] == [
        entry['teacher'].split(':')[0] for entry in entries]
    # the snippet updates losses and connectors of the config, whose teachers= it keeps
    runner = dry_run_with(config, snippet_of(printed), root / 'two_suggested.py')
    model = runner.model
    assert model.multi_teacher and list(model.teachers) == ['cnn', 'vit']
    assert [item.name for item in model.distiller.items] == [e['name'] for e in entries]
    dry = capsys.readouterr().out
    assert 'distill.loss_kd_logits_cnn = ' in dry and 'distill.loss_kd_logits_vit = ' in dry


# --- seg and det on generated data, random teachers ----------------------------------------------
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def random_teacher(tmp_path, teacher_config, build):
    model = build(Config.fromfile(osp.join(REPO, teacher_config)).model)
    model.init_weights()
    path = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def test_seg(tmp_path, capsys):
    from kdzoo.adapters.mmseg.distill import build_mmseg
    from kdzoo.toydata import make_seg_dataset
    from tools.analyze import main
    data = make_seg_dataset(str(tmp_path / 'seg'), num_images=(4, 4))
    teacher = random_teacher(tmp_path, 'configs/seg/quickstart_teacher.py', build_mmseg)
    options = [f'{loader}.dataset.data_root={data}' for loader in LOADERS]
    sims, items, connectors = main([
        osp.join(REPO, 'configs/seg/quickstart_msdcrd.py'), '--batch-size', '4', '--out',
        str(tmp_path / 'out'), '--cfg-options', f'distill_cfg.teacher.checkpoint={teacher}',
        *options])
    sim, = sims
    names = ['stage1', 'stage2', 'stage3', 'stage4', 'logits']
    assert sim.teacher == sim.student == names and sim.images == 4
    assert sim.agreement is not None  # per pixel, 10 classes on both sides
    assert items[-1][0] == dict(student='logits', teacher='logits',
                                loss=dict(type='MSDCRDLoss'), name='msdcrd_logits')
    widths = dict(student=(16, 32, 64, 128), teacher=(32, 64, 128, 256))  # the two configs'
    for entry, _ in items[:4]:
        s, t = (widths[side][int(entry[side][-1]) - 1] for side in ('student', 'teacher'))
        if s == t:
            assert 'connector' not in entry
        else:
            assert connectors[entry['connector']] == dict(type='Projector', in_channels=s,
                                                          out_channels=t)
    assert open(tmp_path / 'out' / 'similarity.png', 'rb').read(8) == PNG


def test_det(tmp_path, capsys):
    from kdzoo.adapters.mmdet.distill import build_mmdet
    from kdzoo.toydata import make_det_dataset
    from tools.analyze import main
    data = make_det_dataset(str(tmp_path / 'det'), num_images=(4, 4))
    teacher = random_teacher(tmp_path, 'configs/det/quickstart_retinanet_swin_teacher.py',
                             build_mmdet)
    options = [f'{loader}.dataset.data_root={data["root"]}/' for loader in LOADERS]
    options += [f'{e}.ann_file={data["val_ann"]}' for e in ('val_evaluator', 'test_evaluator')]
    sims, items, _ = main([
        osp.join(REPO, 'configs/det/quickstart_pkd.py'), '--batch-size', '4', '--out',
        str(tmp_path / 'out'), '--cfg-options', f'distill_cfg.teacher.checkpoint={teacher}',
        *options])
    sim, = sims
    levels = [f'fpn{i}' for i in range(1, 6)]
    assert sim.student == ['stage1', 'stage2', 'stage3', 'stage4'] + levels
    assert sim.teacher == ['stage1', 'stage2', 'stage3'] + levels
    assert sim.agreement is None
    # the Swin teacher's stages are reshaped after its last module: no tap, no stage item
    assert [e for e, _ in items] == [dict(student='neck', teacher='neck',
                                          loss=dict(type='PKDLoss'), name='pkd_fpn')]
    assert 'not suggested: teacher stage1, stage2, stage3' in capsys.readouterr().out


def test_a_nan_checkpoint_is_refused_naming_the_tensors(cls_run, tmp_path):
    """A NaN student gave a heatmap and a snippet computed from NaN CKA values."""
    from kdzoo.checkpoint import CheckpointError
    from tools.analyze import main
    config, root = cls_run[0], cls_run[1]
    loaded = torch.load(root / 'work' / 'iter_2.pth', weights_only=False)
    key = 'distiller.student.model.fc.weight'
    loaded['state_dict'][key] = torch.full_like(loaded['state_dict'][key], float('nan'))
    torch.save(loaded, tmp_path / 'nan.pth')
    with pytest.raises(CheckpointError) as err:
        main([config, '--checkpoint', str(tmp_path / 'nan.pth'), '--batches', '1', '--out',
              str(tmp_path / 'out')])
    assert str(err.value) == (
        f'--checkpoint {tmp_path}/nan.pth holds non-finite values (NaN or Inf) in 1 tensors of '
        'the student: model.fc.weight; its similarities would be NaN. Give a checkpoint saved '
        'before the training diverged.')
    assert not (tmp_path / 'out' / 'similarity.png').exists()


def test_a_checkpoint_of_other_classes_is_refused_unless_ignored(cls_run, shapes_data, tmp_path):
    import shutil

    from kdzoo.class_names import ClassNamesError
    from tools.analyze import main
    config, root = cls_run[0], cls_run[1]
    checkpoint = str(root / 'work' / 'iter_2.pth')
    val = tmp_path / 'val'
    shutil.copytree(shapes_data['val'], val)
    first = sorted(p.name for p in val.iterdir())[0]
    (val / first).rename(val / 'zzz')
    args = [config, '--checkpoint', checkpoint, '--batches', '1', '--out', str(tmp_path / 'out'),
            '--cfg-options', f'val_dataloader.dataset.root={val}']
    with pytest.raises(ClassNamesError) as err:
        main(args)
    assert str(err.value).startswith(
        f'student checkpoint {checkpoint} was trained on other classes than the data: 4 classes '
        f"vs 4; only in the checkpoint: ['{first}'], only in the data: ['zzz'].\n")
    assert str(err.value).endswith('set --ignore-class-names.')
    sims, _, _ = main(args + ['--ignore-class-names'])
    assert [s.weights for s in sims] == ['init', 'trained']


def test_load_from_in_the_options_is_refused_naming_checkpoint(cls_config):
    """analyze never loaded ``load_from``: the snippet was of the untrained student, silently."""
    from tools.analyze import main
    config, root = cls_config
    with pytest.raises(SystemExit) as err:
        main([config, '--cfg-options', f'load_from={root}/work/iter_2.pth'])
    assert str(err.value) == (f'analyze: --cfg-options load_from={root}/work/iter_2.pth is not '
                              'loaded by analyze; give the trained student as --checkpoint '
                              f'{root}/work/iter_2.pth.')
