"""tools/train.py on tiny timm models and the generated shapes set: a 2-iteration run with each
seed loss, --dry-run, --resume, the teacher check, and build-time errors for bad configs."""
import json
import math
import re
import shutil
import time

import pytest
import torch
from tools_helpers import SEED_LOSSES, STUDENT, TEACHER, log_text, scalars_text

from kdzoo.checkpoint import load_file, state_dict_of


def scalar_rows(work_dir):
    return [json.loads(line) for line in scalars_text(work_dir).splitlines() if line.strip()]


@pytest.mark.parametrize('name', sorted(SEED_LOSSES))
def test_two_iterations_train_the_student_only(trained, name):
    _, work_dir, runner, before, teacher_before = trained(name, SEED_LOSSES[name])
    model = runner.model
    assert runner.iter == 2
    keys = [f'distill.loss_{item["name"]}' for item in SEED_LOSSES[name]['losses']]
    rows = [row for row in scalar_rows(work_dir) if 'loss_cls' in row]
    assert len(rows) == 2
    for row in rows:
        assert all(key in row and math.isfinite(row[key]) for key in keys), row
        assert math.isfinite(row['loss'])
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith('distiller.student.model.') for k in changed)
    if 'connectors' in SEED_LOSSES[name]:
        assert any(k.startswith('distiller.connectors.') for k in changed)
    # the teacher: frozen, in eval mode, outside the checkpoint
    assert all(torch.equal(v, teacher_before[k]) for k, v in model.teacher.state_dict().items())
    assert not model.teacher.training
    assert all(not p.requires_grad for p in model.teacher.parameters())
    saved = state_dict_of(load_file(work_dir / 'iter_2.pth'))
    assert saved and not any('teacher' in k for k in saved)


def test_teacher_check_runs_before_training(trained, teacher_checkpoint, shapes_data):
    _, work_dir, runner, _, _ = trained('kd', SEED_LOSSES['kd'])
    log = log_text(work_dir)[-1]
    assert 'teacher check (teacher on the val set): cls/top1:' in log
    assert log.index('teacher check') < log.index('Iter(train) [1/2]')
    # the logged value is the accuracy of the teacher (not of the student) on the val set
    from kdzoo.adapters.cls import ImageFolderCls
    val = ImageFolderCls(shapes_data['val'])
    images = torch.stack([item['inputs'] for item in val]).float()
    labels = torch.tensor([item['data_samples'] for item in val])
    with torch.no_grad():
        top1 = 100.0 * (runner.model.teacher(images).argmax(1) == labels).float().mean().item()
    assert runner.message_hub.get_info('teacher_check/cls/top1') == pytest.approx(top1)


def test_dry_run_prints_every_item(distill_config, capsys):
    from tools.train import main
    config, work_dir = distill_config('dry', SEED_LOSSES['mldrkd'])
    runner = main([config, '--dry-run'])
    out = capsys.readouterr().out
    assert runner.iter == 0 and not list(work_dir.glob('*.pth'))
    lines = [line for line in out.splitlines() if line.startswith('  dfra_')]
    assert len(lines) == 2, out
    stage2, fused = lines
    assert "student ['stage2'] [(4, 48, 8, 8)] -> connector msdf.branches.0 -> [(4, 4)]" in stage2
    assert "student ['stage2', 'stage4'] [(4, 48, 8, 8), (4, 96, 2, 2)] -> connector msdf" in fused
    for line in lines:
        assert "teacher 'logits' (4, 4) | DFRALoss = " in line
        value = float(line.split('DFRALoss = ')[1].split()[0])
        assert math.isfinite(value) and value >= 0
    assert 'distill.loss_dfra_fused = ' in out and 'loss_cls = ' in out


def test_resume_continues_from_the_saved_iteration(distill_config):
    import mmengine.runner.checkpoint as mm_checkpoint

    from kdzoo.checkpoint import weights_only_torch_load
    from tools.train import main
    config, work_dir = distill_config('resume', SEED_LOSSES['kd'])
    main([config])
    assert (work_dir / 'iter_2.pth').is_file()
    # a second file name, so that MMEngine names the second run's logger differently, and a new
    # second on the clock: MMEngine names a run's log folder by its start time to the second, and
    # a second run in the same second would append to the first run's log
    again = shutil.copy(config, config.replace('.py', '_again.py'))
    time.sleep(1.05)
    runner = main([again, '--resume', '--cfg-options', 'train_cfg.max_iters=4',
                   'distill_cfg.teacher_check=False'])
    assert mm_checkpoint._safe_torch_load is weights_only_torch_load  # resumed with weights_only
    assert runner.iter == 4
    assert (work_dir / 'iter_4.pth').is_file()
    log = log_text(work_dir)[-1]
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    assert 'teacher check' not in log  # distill_cfg.teacher_check=False


def test_teacher_check_false_adds_no_hook():
    from mmengine.config import Config

    from kdzoo.adapters import wrap
    distill_cfg = dict(teacher=dict(config=TEACHER), losses=SEED_LOSSES['kd']['losses'])
    hooks = wrap(Config(dict(model=STUDENT, distill_cfg=distill_cfg))).get('custom_hooks', [])
    assert [h['type'] for h in hooks] == ['TeacherCheckHook']
    distill_cfg['teacher_check'] = False
    assert not wrap(Config(dict(model=STUDENT, distill_cfg=distill_cfg))).get('custom_hooks')


KD = dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))


@pytest.mark.filterwarnings('ignore:distill_cfg.teacher has no checkpoint')
@pytest.mark.parametrize('student, teacher, items, error, match', [
    (dict(STUDENT, model_name='resnet18x'), {}, [KD], ValueError,
     r"unknown timm model 'resnet18x'; closest timm names: \[.*'resnet18'"),
    (STUDENT, {}, [dict(KD, student='model.layer9')], ValueError,
     r"student tap 'model.layer9' is not a module .* Closest valid paths: \[.*'model.layer1'"),
    (STUDENT, {}, [dict(KD, teacher='stage5')], ValueError,
     r"teacher tap 'stage5' is not a module of TimmClassifier. Closest valid paths: \['stage4'"),
    (STUDENT, dict(config=dict(TEACHER, num_classes=3)), [KD], ValueError,
     r'student has num_classes=4 and the teacher num_classes=3'),
    (STUDENT, dict(checkpoint='missing/teacher.pth'), [KD], RuntimeError,
     r'checkpoint not found: missing/teacher.pth'),
], ids=['timm-name', 'module-tap', 'reserved-tap', 'num-classes', 'teacher-checkpoint'])
def test_bad_configs_fail_when_built(shapes_data, tmp_path, request, student, teacher, items,
                                     error, match):
    from tools_helpers import runner_config, write_config

    from kdzoo.runner import build_runner
    distill_cfg = dict(teacher=dict(dict(config=TEACHER), **teacher), losses=items)
    name = 'bad_' + request.node.callspec.id.replace('-', '_')
    config = write_config(tmp_path / f'{name}.py', runner_config(shapes_data, tmp_path / 'work',
                                                             model=student,
                                                             distill_cfg=distill_cfg))
    with pytest.raises(error, match=match):
        build_runner(config)


@pytest.mark.parametrize('losses, error, message', [
    (dict(KD), TypeError, 'distill_cfg.losses must be a list of item dicts, got one dict; wrap it '
     'in a list: losses=[dict(student=..., teacher=..., loss=dict(type=...))]'),
    ([dict(KD, loss='KDLoss')], TypeError, "distill item 0: loss must be a dict, got the string "
     "'KDLoss'; write loss=dict(type='KDLoss')"),
    ([dict(KD, weight='x2')], ValueError, "distill item 0: weight must be a finite number >= 0, "
     "got 'x2'"),
    ([dict(KD, weight=-0.5)], ValueError, 'distill item 0: weight must be a finite number >= 0, '
     'got -0.5'),
    ([dict(KD, warmup_iters=-10)], ValueError, 'distill item 0: warmup_iters must be an integer '
     '>= 0, got -10'),
    ([dict(KD, loss=dict(type='KDLoss', tau=0))], ValueError, "distill item 0 ('kd_0'): KDLoss: "
     'tau must be a positive number (the softmax temperature, 4.0 by default), got 0'),
], ids=['losses-dict', 'loss-string', 'weight-string', 'weight-negative', 'warmup-negative',
        'kd-tau-0'])
def test_bad_items_fail_when_built_naming_the_item(distill_config, request, losses, error,
                                                   message):
    from tools.train import main
    name = 'item_' + request.node.callspec.id.replace('-', '_')
    config, work_dir = distill_config(name, dict(losses=losses))
    for argv in ([config, '--dry-run'], [config]):
        with pytest.raises(error, match='^' + re.escape(message) + '$'):
            main(argv)
    assert not work_dir.exists() or not list(work_dir.glob('*.pth'))


def overflowing_teacher(teacher_checkpoint, path):
    """The trained teacher with finite weights whose logits overflow to Inf (a teacher broken in
    a way no load-time check sees): its head's features are all 1 (norm weight 0, bias 1) and its
    classifier weights 3e38, so every logit is 64 x 3e38."""
    checkpoint = load_file(teacher_checkpoint)
    weights = checkpoint['state_dict']
    weights['model.head.norm.weight'].zero_()
    weights['model.head.norm.bias'].fill_(1.0)
    weights['model.head.fc.weight'].fill_(3e38)
    torch.save(checkpoint, path)
    return str(path)


def test_nonfinite_teacher_stops_the_dry_run_and_training(shapes_data, teacher_checkpoint,
                                                          tmp_path):
    from tools_helpers import runner_config, write_config

    from kdzoo.finite import NonFiniteError
    from tools.train import main
    teacher = dict(config=TEACHER,
                   checkpoint=overflowing_teacher(teacher_checkpoint, tmp_path / 'inf.pth'))
    cfg = runner_config(shapes_data, tmp_path / 'work', distill_cfg=dict(
        teacher=teacher, losses=SEED_LOSSES['kd']['losses'], teacher_check=False))
    config = write_config(tmp_path / 'inf_teacher.py', cfg)
    message = ("non-finite values (NaN or Inf) in distill item 'kd' (student taps ['logits'], "
               "teacher tap 'logits') at iteration 1: the teacher side has")
    with pytest.raises(NonFiniteError, match=re.escape(message)):
        main([config, '--dry-run'])
    with pytest.raises(NonFiniteError, match=re.escape(message)):
        main([config])
    assert not list((tmp_path / 'work').glob('*.pth'))


def test_nan_teacher_checkpoint_is_refused_when_built(distill_config, teacher_checkpoint,
                                                      tmp_path):
    from kdzoo.checkpoint import CheckpointError
    from tools.train import main
    checkpoint = load_file(teacher_checkpoint)
    checkpoint['state_dict']['model.head.fc.bias'][0] = float('nan')
    torch.save(checkpoint, tmp_path / 'nan.pth')
    config, _ = distill_config('nan_teacher', dict(losses=SEED_LOSSES['kd']['losses']))
    with pytest.raises(CheckpointError, match=re.escape(
            f'checkpoint {tmp_path}/nan.pth holds non-finite values (NaN or Inf) in 1 tensors: '
            'model.head.fc.bias;')):
        main([config, '--dry-run', '--cfg-options',
              f'distill_cfg.teacher.checkpoint={tmp_path}/nan.pth'])


def test_resume_alone_without_a_checkpoint_names_the_work_dir(distill_config, tmp_path):
    from tools.train import main
    config, _ = distill_config('resume_empty', SEED_LOSSES['kd'])
    empty = tmp_path / 'empty_work_dir'
    for work_dir in (empty, tmp_path / 'missing'):
        if work_dir == empty:
            empty.mkdir()
        with pytest.raises(FileNotFoundError, match='^' + re.escape(
                f'--resume: no checkpoint to resume from in the work dir {work_dir} (no '
                "last_checkpoint file there). Give the run's work dir (--work-dir) or the "
                'checkpoint (--resume PATH), or train from scratch without --resume.') + '$'):
            main([config, '--resume', '--work-dir', str(work_dir)])


def test_train_and_val_with_other_classes_fail_before_training(shapes_data, tmp_path):
    """A class folder missing from the val split shifts every val label after it."""
    from tools_helpers import runner_config, write_config

    from tools.train import main
    val = tmp_path / 'val'
    shutil.copytree(shapes_data['val'], val)
    classes = sorted(p.name for p in val.iterdir())
    shutil.rmtree(val / classes[1])
    cfg = runner_config(dict(shapes_data, val=str(val)), tmp_path / 'work')
    config = write_config(tmp_path / 'other_val_classes.py', cfg)
    message = ('the train and val datasets name different classes (4 in train, 3 in val; only in '
               f"train: ['{classes[1]}']; only in val: []). Labels are class indices, so they "
               'would mean other classes in val; give both splits the same classes (the same '
               'class folders).')
    for argv in ([config, '--dry-run'], [config]):
        with pytest.raises(ValueError, match='^' + re.escape(message) + '$'):
            main(argv)
    assert not list((tmp_path / 'work').glob('*.pth'))


def test_a_training_run_parses_its_items_once(distill_config, monkeypatch):
    """From the config to the built model (what tools/train.py does), the items are parsed once:
    by the distilling model, before its teacher is built (wrap checks distill_cfg's keys only)."""
    import kdzoo.adapters
    import kdzoo.adapters.base
    import kdzoo.distiller
    from kdzoo.runner import build_runner
    parsed, parse = [], kdzoo.distiller.parse_items

    def counted(losses, *args):
        parsed.append(losses)
        return parse(losses, *args)
    for module in (kdzoo.distiller, kdzoo.adapters, kdzoo.adapters.base):
        if hasattr(module, 'parse_items'):
            monkeypatch.setattr(module, 'parse_items', counted)
    config, _ = distill_config('parsed_once', dict(losses=[KD, dict(KD, name='kd')]))
    runner = build_runner(config)
    assert len(parsed) == 1
    assert [item.name for item in runner.model.distiller.items] == ['kd_0', 'kd']
