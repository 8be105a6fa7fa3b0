"""tools/export_student.py (run as a script) and tools/test.py on a distillation checkpoint and on
the exported student."""
import subprocess
import sys
import time

import pytest
import timm
import torch
from tools_helpers import NUM_CLASSES, REPO, SEED_LOSSES, STUDENT


def val_batch(shapes_data):
    from kdzoo.adapters.cls import ImageFolderCls
    val = ImageFolderCls(shapes_data['val'])
    images = torch.stack([item['inputs'] for item in val]).float()
    return images, torch.tensor([item['data_samples'] for item in val])


def test_exported_student_loads_in_plain_timm_and_tests(trained, shapes_data, tmp_path):
    from tools.test import main as test_main
    config, work_dir, runner, _, _ = trained('kd', SEED_LOSSES['kd'])
    checkpoint, out = str(work_dir / 'iter_2.pth'), str(tmp_path / 'student.pth')
    subprocess.run([sys.executable, 'tools/export_student.py', config, checkpoint, out],
                   cwd=REPO, check=True, capture_output=True)
    plain = timm.create_model(STUDENT['model_name'], num_classes=NUM_CLASSES)
    plain.load_state_dict(torch.load(out, weights_only=True))
    plain.eval()
    student = runner.model.student.eval()
    images, labels = val_batch(shapes_data)
    with torch.no_grad():
        expected = student(images)
        logits = plain(student.preprocess(images))
    assert torch.allclose(logits, expected, atol=1e-5)
    # tools/test.py evaluates the same student from the training checkpoint
    metrics = test_main([config, checkpoint, '--work-dir', str(tmp_path / 'test')])
    top1 = 100.0 * (logits.argmax(1) == labels).float().mean().item()
    assert metrics['cls/top1'] == top1
    # ... and the exported student (plain timm keys) too
    time.sleep(1.05)  # MMEngine names a run's log folder by its start second
    exported = test_main([config, out, '--work-dir', str(tmp_path / 'test')])
    assert exported['cls/top1'] == top1


def test_student_weights_keys_match_the_config_model():
    """A training checkpoint's student, a classification export (plain timm keys, put back under
    the TimmClassifier's ``model.``) and a seg / det export (the plain model's keys, as they
    are)."""
    from kdzoo.commands.test import student_weights
    w = torch.zeros(1)
    own = {'model.conv.weight', 'model.fc.bias'}
    assert student_weights({'distiller.student.model.fc.bias': w, 'distiller.teacher_x': w},
                           own) == {'model.fc.bias': w}
    assert student_weights({'conv.weight': w, 'fc.bias': w}, own).keys() == own
    plain = {'backbone.conv.weight': w, 'decode_head.conv_seg.bias': w}
    assert student_weights(plain, set(plain)) == plain
    # another classifier's checkpoint keeps its own keys (the error named model.model.head...)
    other = {'model.head.fc.bias': w}
    assert student_weights(other, own) == other


def test_a_mismatched_checkpoint_names_the_file(trained, tmp_path):
    from kdzoo.checkpoint import CheckpointError
    from tools.test import main as test_main
    config, _, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(CheckpointError, match=f'^checkpoint {tmp_path}/other.pth does not match '
                                              'TimmClassifier: missing keys'):
        test_main([config, str(tmp_path / 'other.pth'), '--work-dir', str(tmp_path / 'test')])


# --- tools/test.py tests CKPT on the test set, nothing else -----------------------------------
def test_load_from_in_the_options_is_refused_naming_it(trained, tmp_path):
    """MMEngine's test loaded ``load_from`` after CKPT: the score printed was load_from's."""
    from tools.test import main as test_main
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    checkpoint = str(work_dir / 'iter_2.pth')
    with pytest.raises(SystemExit) as err:
        test_main([config, checkpoint, '--work-dir', str(tmp_path / 'test'),
                   '--cfg-options', f'load_from={tmp_path}/other.pth'])
    assert str(err.value) == (
        f'kdzoo test: --cfg-options load_from={tmp_path}/other.pth would load other weights '
        f'over CKPT ({checkpoint}); kdzoo test tests CKPT: give the checkpoint to test as CKPT '
        'and drop the option.')


def test_load_from_in_the_config_is_ignored_with_a_line(trained, tmp_path, capsys):
    """A config's own ``load_from`` (here: zeroed weights of the same model, which MMEngine's test
    loaded over CKPT) is ignored, said on stderr; the score is CKPT's."""
    from tools.test import main as test_main
    config, work_dir, runner, _, _ = trained('kd', SEED_LOSSES['kd'])
    checkpoint = str(work_dir / 'iter_2.pth')
    expected = test_main([config, checkpoint, '--work-dir', str(tmp_path / 'plain')])
    zeros = {'model.' + k: torch.zeros_like(v)
             for k, v in runner.model.student.model.state_dict().items()}
    torch.save({'state_dict': zeros}, tmp_path / 'zeros.pth')
    with_load_from = tmp_path / 'with_load_from.py'
    zeros_path = str(tmp_path / 'zeros.pth')
    with_load_from.write_text(open(config).read() + f'load_from = {zeros_path!r}\n')
    capsys.readouterr()
    time.sleep(1.05)  # MMEngine names a run's log folder by its start second
    metrics = test_main([str(with_load_from), checkpoint, '--work-dir', str(tmp_path / 'lf')])
    assert (f'kdzoo test: ignoring load_from={tmp_path}/zeros.pth of the config: '
            f'kdzoo test tests CKPT ({checkpoint})') in capsys.readouterr().err
    assert metrics == expected


def test_a_val_dataloader_override_is_refused_with_the_test_key(trained, tmp_path):
    from tools.test import main as test_main
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    with pytest.raises(SystemExit) as err:
        test_main([config, str(work_dir / 'iter_2.pth'), '--work-dir', str(tmp_path / 'test'),
                   '--cfg-options', f'val_dataloader.dataset.root={tmp_path}'])
    assert str(err.value) == (
        f'kdzoo test: --cfg-options val_dataloader.dataset.root={tmp_path} does not change the '
        'test: kdzoo test evaluates on test_dataloader with test_evaluator. Set '
        f'test_dataloader.dataset.root={tmp_path} instead.')


def test_a_test_set_with_other_classes_is_refused_unless_ignored(trained, shapes_data, tmp_path):
    """One extra class folder ('aaa', sorted first) shifts every label: the score was computed
    silently against the wrong labels."""
    import shutil

    from kdzoo.class_names import ClassNamesError
    from tools.test import main as test_main
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    checkpoint = str(work_dir / 'iter_2.pth')
    root = tmp_path / 'val'
    shutil.copytree(shapes_data['val'], root)
    first = sorted(p for p in root.iterdir())[0]
    shutil.copytree(first, root / 'aaa')
    options = ['--work-dir', str(tmp_path / 'test'), '--cfg-options',
               f'test_dataloader.dataset.root={root}']
    with pytest.raises(ClassNamesError) as err:
        test_main([config, checkpoint, *options])
    assert str(err.value).startswith(
        f'student checkpoint {checkpoint} was trained on other classes than the data: 4 classes '
        "vs 5; only in the checkpoint: [], only in the data: ['aaa'].\n")
    assert str(err.value).endswith('set --ignore-class-names.')
    assert 'cls/top1' in test_main([config, checkpoint, *options, '--ignore-class-names'])


# --- the exporter checks before it writes ------------------------------------------------------
def export_main(*args):
    from tools.export_student import main
    return main([str(a) for a in args])


def test_another_models_checkpoint_is_refused_naming_the_mismatch(trained, teacher_checkpoint,
                                                                   tmp_path):
    """The teacher's run (ConvNeXt) given as the ResNet student's checkpoint was written as
    '<n> tensors of the student'."""
    from kdzoo.checkpoint import CheckpointError
    config, _, runner, _, _ = trained('kd', SEED_LOSSES['kd'])
    total = len(runner.model.student.model.state_dict())
    with pytest.raises(CheckpointError) as err:
        export_main(config, teacher_checkpoint, tmp_path / 's.pth')
    assert str(err.value).startswith(
        f'checkpoint {teacher_checkpoint} does not hold the student of this config (ResNet): '
        f'0 of its {total} tensors match; missing keys ({total}): ')
    assert str(err.value).endswith('Give a checkpoint of a run of this config (its distillation '
                                   'run or its student trained alone); nothing was written.')
    assert not (tmp_path / 's.pth').exists()


@pytest.mark.parametrize('target', ['out', 'onnx'])
def test_out_or_onnx_equal_to_ckpt_is_refused_and_ckpt_kept(trained, tmp_path, target,
                                                            monkeypatch):
    """OUT == CKPT replaced the training checkpoint with the student (9.95 MB -> 3.30 MB)."""
    import shutil
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    checkpoint = tmp_path / 'iter_2.pth'
    shutil.copy(work_dir / 'iter_2.pth', checkpoint)
    before = checkpoint.read_bytes()
    monkeypatch.chdir(tmp_path)  # the same file through another spelling: ./iter_2.pth
    args = ([config, checkpoint, './iter_2.pth'] if target == 'out' else
            [config, checkpoint, tmp_path / 's.pth', '--onnx', './iter_2.pth'])
    name = 'OUT' if target == 'out' else '--onnx'
    with pytest.raises(SystemExit) as err:
        export_main(*args)
    assert str(err.value) == (
        f'export_student: {name} {checkpoint} is the checkpoint CKPT itself: writing it would '
        f'replace the training checkpoint. Give another path for {name}.')
    assert checkpoint.read_bytes() == before and not (tmp_path / 's.pth').exists()


def test_onnx_equal_to_out_is_refused(trained, tmp_path):
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    with pytest.raises(SystemExit) as err:
        export_main(config, work_dir / 'iter_2.pth', tmp_path / 's.pth', '--onnx',
                    tmp_path / 's.pth')
    assert str(err.value) == (
        f'export_student: --onnx and OUT are the same file ({tmp_path}/s.pth): the graph would '
        'overwrite the student checkpoint. Give the graph another path (e.g. student.onnx).')
    assert not (tmp_path / 's.pth').exists()


def test_nan_weights_are_refused_naming_the_tensors(trained, tmp_path):
    """NaN weights were exported, and with --onnx blamed on 'an operator exported
    differently'."""
    from kdzoo.checkpoint import CheckpointError
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    loaded = torch.load(work_dir / 'iter_2.pth', weights_only=False)
    key = 'distiller.student.model.fc.weight'
    loaded['state_dict'][key] = torch.full_like(loaded['state_dict'][key], float('nan'))
    torch.save(loaded, tmp_path / 'nan.pth')
    with pytest.raises(CheckpointError) as err:
        export_main(config, tmp_path / 'nan.pth', tmp_path / 's.pth', '--onnx', tmp_path / 's.onnx')
    assert str(err.value) == (
        f'checkpoint {tmp_path}/nan.pth holds non-finite values (NaN or Inf) in 1 tensors of the '
        'student: fc.weight; the exported model would compute NaN. Export a checkpoint saved '
        'before the training diverged; nothing was written.')
    assert not (tmp_path / 's.pth').exists() and not (tmp_path / 's.onnx').exists()


@pytest.mark.parametrize('shape', [['0', '0'], ['32', '-4']])
def test_input_shape_must_be_positive(trained, tmp_path, capsys, shape):
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    with pytest.raises(SystemExit) as err:
        export_main(config, work_dir / 'iter_2.pth', tmp_path / 's.pth', '--onnx',
                    tmp_path / 's.onnx', '--input-shape', *shape)
    assert err.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f'error: --input-shape {" ".join(shape)}: the graph\'s input height and width must be '
        'two positive integers (H W), e.g. --input-shape 224 224.')
    assert not (tmp_path / 's.pth').exists()


def test_export_with_other_classes_is_refused_unless_ignored(trained, shapes_data, tmp_path):
    """The validation data names another class than the checkpoint records (one class folder
    renamed): label k of the model would mean another class of the data."""
    import shutil

    from kdzoo.class_names import ClassNamesError
    config, work_dir, runner, _, _ = trained('kd', SEED_LOSSES['kd'])
    checkpoint = str(work_dir / 'iter_2.pth')
    root = tmp_path / 'val'
    shutil.copytree(shapes_data['val'], root)
    first = sorted(p.name for p in root.iterdir())[0]
    (root / first).rename(root / 'zzz')
    options = ['--cfg-options', f'val_dataloader.dataset.root={root}']
    with pytest.raises(ClassNamesError) as err:
        export_main(config, checkpoint, tmp_path / 's.pth', *options)
    assert str(err.value).startswith(
        f'student checkpoint {checkpoint} was trained on other classes than the data: 4 classes '
        f"vs 4; only in the checkpoint: ['{first}'], only in the data: ['zzz'].\n")
    assert not (tmp_path / 's.pth').exists()
    export_main(config, checkpoint, tmp_path / 's.pth', *options, '--ignore-class-names')
    assert (tmp_path / 's.pth').is_file()


def test_out_naming_a_folder_is_refused(trained, tmp_path):
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    with pytest.raises(SystemExit) as err:
        export_main(config, work_dir / 'iter_2.pth', tmp_path)
    assert str(err.value) == (f'export_student: OUT {tmp_path} is a folder; give the path of the '
                              f'file to write, e.g. {tmp_path}/student.pth.')


def test_image_missing_or_not_an_image_is_named(trained, tmp_path, capsys):
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    args = [config, work_dir / 'iter_2.pth', tmp_path / 's.pth', '--onnx', tmp_path / 's.onnx']
    with pytest.raises(SystemExit):
        export_main(*args, '--image', tmp_path / 'missing.png')
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f'error: --image {tmp_path}/missing.png: no such file')
    assert not (tmp_path / 's.pth').exists()
    (tmp_path / 'text.png').write_text('not an image')
    with pytest.raises(SystemExit) as err:
        export_main(*args, '--image', tmp_path / 'text.png')
    assert str(err.value).startswith(f'--image {tmp_path}/text.png: cannot be read as an image (')


@pytest.mark.parametrize('extra, said', [
    (['--image', '{image}'], "--image is the ONNX parity check's image: give --onnx OUT.onnx too"),
    (['--onnx', 's.onnx', '--tolerance', '-1'], '--tolerance -1.0: give a difference >= 0'),
    (['--onnx', 's.onnx', '--tolerance', 'nan'], '--tolerance nan: give a difference >= 0'),
])
def test_parity_options_are_checked_when_parsed(tmp_path, capsys, extra, said):
    """--image without --onnx was ignored without a word; a negative or NaN tolerance failed the
    export, blamed on an operator."""
    from kdzoo.commands.export import parse_args
    image = tmp_path / 'x.png'
    image.write_bytes(b'')
    with pytest.raises(SystemExit):
        parse_args(['c.py', 'ck.pth', 'out.pth'] + [a.format(image=image) for a in extra])
    assert said in capsys.readouterr().err
