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
    from tools.test import student_weights
    w = torch.zeros(1)
    own = {'model.conv.weight', 'model.fc.bias'}
    assert student_weights({'distiller.student.model.fc.bias': w, 'distiller.teacher_x': w},
                           own) == {'model.fc.bias': w}
    assert student_weights({'conv.weight': w, 'fc.bias': w}, own).keys() == own
    plain = {'backbone.conv.weight': w, 'decode_head.conv_seg.bias': w}
    assert student_weights(plain, set(plain)) == plain


def test_a_mismatched_checkpoint_names_the_file(trained, tmp_path):
    from kdzoo.checkpoint import CheckpointError
    from tools.test import main as test_main
    config, _, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(CheckpointError, match=f'^checkpoint {tmp_path}/other.pth does not match '
                                              'TimmClassifier: missing keys'):
        test_main([config, str(tmp_path / 'other.pth'), '--work-dir', str(tmp_path / 'test')])
