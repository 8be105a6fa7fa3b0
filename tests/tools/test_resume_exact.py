"""Exact resume: a training process killed with SIGKILL and resumed with ``--resume`` ends with the
same student, bit for bit, as the uninterrupted run (CPU), with every source of randomness on:
augmentation (seeded per sample by kdzoo/data_stream.py), drop-path and dropout in the student and
DFRA's location sampling (the global streams, saved in the checkpoint by
kdzoo.hooks.RandomStateHook), a validation and a data-loader epoch change between the checkpoint
and the next iteration, the teacher check and the data replay of the resumed run.
"""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from tools_helpers import REPO, TEACHER, runner_config, write_config

from kdzoo.checkpoint import load_file, state_dict_of

# test_vit at 32 px: a 2x2 grid of dense logits, so a batch of 8 has 32 locations and DFRA keeps
# a random 12 of them each step.
STUDENT = dict(type='TimmClassifier', model_name='test_vit', num_classes=4, img_size=32,
               drop_path_rate=0.2, drop_rate=0.2)
ITEMS = [dict(student='dense_logits', teacher='dense_logits',
              loss=dict(type='DFRALoss', max_samples=12), name='dfra')]
KILLED_AT, ITERS = 5, 6  # 32 images, batch 8: iteration 5 starts the second epoch


def config(root, data, teacher_checkpoint, stall=False):
    """The run's config; with ``stall`` the process waits after writing checkpoint KILLED_AT
    (tests/tools/training_probes.py) until it is killed."""
    distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint), losses=ITEMS)
    cfg = runner_config(data, root / 'work', model=STUDENT, distill_cfg=distill_cfg,
                        max_iters=ITERS, checkpoint_interval=KILLED_AT)
    cfg['train_dataloader'].update(batch_size=8)
    cfg['train_dataloader']['dataset'].update(augment=True)
    cfg['train_cfg']['val_interval'] = KILLED_AT
    cfg['optim_wrapper']['optimizer']['lr'] = 0.01
    if stall:
        cfg['custom_imports']['imports'].append('training_probes')
        cfg['custom_hooks'] = [dict(type='StallAfterCheckpointHook', iteration=KILLED_AT,
                                    marker=str(root / 'stalled'))]
    return write_config(root / ('stalled.py' if stall else 'run.py'), cfg)


def train(*args):
    """``tools/train.py *args`` as a process of its own (started, not waited for)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, 'tests', 'tools'))
    return subprocess.Popen([sys.executable, 'tools/train.py', *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process):
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out[-5000:]


def kill_when_stalled(process, marker):
    """SIGKILL ``process`` once it has written ``marker`` (after its checkpoint)."""
    deadline = time.time() + 300
    while not marker.exists():
        assert process.poll() is None, process.communicate()[0][-5000:]
        assert time.time() < deadline, 'the run never reached its checkpoint'
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


def test_sigkill_then_resume_gives_the_uninterrupted_student(shapes_data, teacher_checkpoint,
                                                             tmp_path):
    whole, cut = tmp_path / 'whole', tmp_path / 'cut'
    os.makedirs(whole), os.makedirs(cut)
    uninterrupted = train(config(whole, shapes_data, teacher_checkpoint))
    killed = train(config(cut, shapes_data, teacher_checkpoint, stall=True))
    kill_when_stalled(killed, cut / 'stalled')
    finish(uninterrupted)
    work = cut / 'work'
    assert (work / f'iter_{KILLED_AT}.pth').is_file() and not (work / f'iter_{ITERS}.pth').exists()
    finish(train(config(cut, shapes_data, teacher_checkpoint), '--resume'))
    expected = state_dict_of(load_file(whole / 'work' / f'iter_{ITERS}.pth'))
    resumed = state_dict_of(load_file(work / f'iter_{ITERS}.pth'))
    assert expected.keys() == resumed.keys()
    differing = [k for k in expected if not torch.equal(expected[k], resumed[k])]
    assert not differing, differing
    before = state_dict_of(load_file(work / f'iter_{KILLED_AT}.pth'))
    assert any(not torch.equal(before[k], resumed[k]) for k in resumed)  # it did train on


def quickstart_config(root, data, teacher_checkpoint):
    """configs/quickstart/mldrkd.py (augmentation, InfiniteSampler, AdamW, one-cycle, MLDR-KD
    items) on a small generated set, with drop-path in its ViT and a checkpoint every 2
    iterations; and the same config whose run stops with an error after that checkpoint."""
    config, crashing = root / 'quickstart_mldrkd.py', root / 'quickstart_mldrkd_crash.py'
    config.write_text(
        f"_base_ = '{REPO}/configs/quickstart/mldrkd.py'\n"
        'model = dict(drop_path_rate=0.2)\n'
        f"train_dataloader = dict(batch_size=8, dataset=dict(root='{data['train']}'))\n"
        f"val_dataloader = dict(batch_size=8, dataset=dict(root='{data['val']}'))\n"
        'test_dataloader = val_dataloader\n'
        'train_cfg = dict(max_iters=4, val_interval=2)\n'
        'default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=3))\n'
        f"distill_cfg = dict(teacher=dict(checkpoint='{teacher_checkpoint}'))\n")
    crashing.write_text(
        f"_base_ = './{config.name}'\n"
        "custom_imports = dict(imports=['kdzoo.adapters.cls', 'training_probes'])\n"
        "custom_hooks = [dict(type='CrashAfterCheckpointHook', iteration=2)]\n")
    return str(config), str(crashing)


def test_quickstart_config_resumes_exactly(tmp_path, monkeypatch):
    """The quick-start MLDR-KD config, stopped by an error after its checkpoint at iteration 2 and
    resumed, ends where the uninterrupted run ends (in one process: what ran before the resume
    does not matter either)."""
    from yapf.yapflib import yapf_api

    from kdzoo.adapters.cls import TimmClassifier
    from kdzoo.toydata import make_shapes_dataset
    from tools.train import main
    monkeypatch.setattr(yapf_api, 'FormatCode', lambda text, **kwargs: (text, False))  # fast dumps
    data = make_shapes_dataset(str(tmp_path / 'data'), num_classes=10, per_class=(4, 1))
    teacher = TimmClassifier('resnet10t', num_classes=10, output_stride=16)
    torch.save(teacher.state_dict(), tmp_path / 'teacher.pth')
    config, crashing = quickstart_config(tmp_path, data, tmp_path / 'teacher.pth')
    main([config, '--work-dir', str(tmp_path / 'whole')])
    with pytest.raises(RuntimeError, match='stopped after the checkpoint of iteration 2'):
        main([crashing, '--work-dir', str(tmp_path / 'cut')])
    time.sleep(1.05)  # a new second: MMEngine names a run's log folder by its start time
    main([config, '--work-dir', str(tmp_path / 'cut'), '--resume'])
    expected = state_dict_of(load_file(tmp_path / 'whole' / 'iter_4.pth'))
    resumed = state_dict_of(load_file(tmp_path / 'cut' / 'iter_4.pth'))
    assert [k for k in expected if not torch.equal(expected[k], resumed[k])] == []
