"""Two teachers of different families in one config, through the tools a user runs:
tools/train.py trains it (an item on each teacher, one on their ensemble), ``--dry-run`` lists
each item with its teacher, the training checkpoint holds no teacher tensor, and
tools/export_student.py's student loads in plain timm (docs/distill_cfg.md, "Several teachers")."""
import subprocess
import sys

import pytest
import timm
import torch
from tools_helpers import (
    NUM_CLASSES,
    REPO,
    STUDENT,
    TEACHER,
    log_text,
    runner_config,
    write_config,
)

VIT = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=NUM_CLASSES,
           img_size=32, patch_size=8, depth=2, embed_dim=48, num_heads=3)
LOSSES = [
    dict(student='logits', teacher='convnext:logits', loss=dict(type='KDLoss', tau=4.0)),
    dict(student='stage4', teacher='vit:stage4', loss=dict(type='MSELoss'), connector='proj'),
    dict(student='logits', teacher=['convnext:logits', 'vit:logits'], teacher_weights=[2, 1],
         loss=dict(type='KDLoss', tau=4.0), name='ensemble'),
]


@pytest.fixture(scope='module')
def two_teachers(shapes_data, teacher_checkpoint, tmp_path_factory):
    """A config distilling the tools tests' student from the trained ConvNeXt teacher and a ViT
    teacher trained for 2 iterations here; ``(config path, work dir)``."""
    from tools.train import main
    root = tmp_path_factory.mktemp('two_teachers')
    vit = write_config(root / 'vit.py', runner_config(shapes_data, root / 'vit', model=VIT))
    main([vit])
    distill_cfg = dict(
        teachers=dict(convnext=dict(config=TEACHER, checkpoint=teacher_checkpoint),
                      vit=dict(config=VIT, checkpoint=str(root / 'vit' / 'iter_2.pth'))),
        losses=LOSSES,
        connectors=dict(proj=dict(type='Projector', in_channels=96, out_channels=48)))
    work_dir = root / 'work'
    config = write_config(root / 'two_teachers.py',
                          runner_config(shapes_data, work_dir, distill_cfg=distill_cfg))
    return config, work_dir


def test_dry_run_lists_each_item_with_its_teacher(two_teachers, capsys):
    from tools.train import main
    config, _ = two_teachers
    main([config, '--dry-run'])
    out = capsys.readouterr().out
    assert "| teacher convnext:'logits' (4, 4) |" in out
    assert "| teacher vit:'stage4' (4, 48, 4, 4) |" in out
    assert "| ensemble of convnext:'logits' + vit:'logits' (weights 2, 1) [(4, 4), (4, 4)] |" \
        in out


def test_it_trains_saves_no_teacher_and_exports_a_plain_timm_student(two_teachers, tmp_path):
    from tools.train import main
    config, work_dir = two_teachers
    runner = main([config])
    log = log_text(work_dir)[-1]
    for name in ('convnext', 'vit'):  # the teacher check, per teacher, and the monitor
        assert f"teacher check (teacher '{name}' on the val set): cls/top1:" in log
        assert f'distill.agree_{name}:' in log
    for key in ('distill.loss_kd_0', 'distill.loss_mse_1', 'distill.loss_ensemble'):
        assert f'{key}:' in log
    checkpoint = str(work_dir / 'iter_2.pth')
    state = torch.load(checkpoint, weights_only=False)['state_dict']
    assert state and all(k.startswith(('distiller.student.', 'distiller.connectors.'))
                         for k in state)
    out = str(tmp_path / 'student.pth')
    subprocess.run([sys.executable, 'tools/export_student.py', config, checkpoint, out],
                   cwd=REPO, check=True, capture_output=True)
    plain = timm.create_model(STUDENT['model_name'], num_classes=NUM_CLASSES).eval()
    plain.load_state_dict(torch.load(out, weights_only=True))
    student = runner.model.student.eval()
    images = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        assert torch.allclose(plain(student.preprocess(images)), student(images), atol=1e-5)
