"""tools/dist_train.sh launched for real: 2 processes on the CPU (gloo, chosen by kdzoo/runner.py
from the device, with no ``dist_cfg`` in the config), against tools/train.py in 1 process on the
same global batch. CUDA is hidden from the processes: the test is the same on a GPU machine.

A LayerNorm-only ViT student (BatchNorm statistics would differ between half and full batches)
with batch-wise-mean losses: KD, and MSDCRD / LFCC with ``gather_distributed=True`` (their
negatives come from both ranks). The mean over the ranks of each logged loss equals the 1-process
loss at every iteration, the two ranks end with the same student, and the teacher is in neither
the DDP wrapper nor the optimizer.

Every multi-process run here must end cleanly: torchrun and each of its ranks exit 0, with no
``terminate called`` abort of the C++ runtime in the output (a rank used to die so, with SIGABRT,
after a complete run; :func:`kdzoo.runner.process_group_teardown`). A run that fails exits 1 with
its own message.
"""
import os
import re
import socket
import subprocess
import sys

import pytest
import torch
from tools_helpers import REPO, TEACHER, runner_config, write_config

STUDENT = dict(type='TimmClassifier', model_name='test_vit', num_classes=4, img_size=32)
GATHER = dict(student='dense_logits', teacher='dense_logits')
ITEMS = [
    dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='kd'),
    dict(GATHER, loss=dict(type='MSDCRDLoss', gather_distributed=True), name='msdcrd'),
    dict(GATHER, loss=dict(type='LFCCLoss', gather_distributed=True), name='lfcc'),
]
ITERS = 3
GLOBAL_BATCH = 4


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def probed_config(root, data, teacher_checkpoint, batch_size):
    """A config distilling the ViT with ITEMS, ``batch_size`` images per process, whose
    ProbeHook writes ``root/out/rank<r>.pt``."""
    os.makedirs(root / 'out')
    distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint), losses=ITEMS)
    cfg = runner_config(data, root / 'work', model=STUDENT, distill_cfg=distill_cfg,
                        max_iters=ITERS)
    cfg['train_dataloader']['batch_size'] = batch_size
    cfg['optim_wrapper']['optimizer']['lr'] = 0.005  # the ViT stays far from diverging
    cfg['custom_imports']['imports'].append('training_probes')
    cfg['custom_hooks'] = [dict(type='ProbeHook', out=str(root / 'out'))]
    cfg['env_cfg'] = dict(cudnn_benchmark=False)  # no dist_cfg: the backend follows the device
    return write_config(root / 'probed.py', cfg)


def launch(command, root):
    """Run ``command`` to its end; returns ``(exit code, output, {rank: exit code})``.

    torchrun starts each rank with the executable ``PYTHON_EXEC`` names (torch/distributed/run.py):
    here a script that runs Python and appends the rank's exit code to ``root/exit_codes``."""
    codes, python = root / 'exit_codes', root / 'rank_python'
    python.write_text(f'#!/bin/sh\n"{sys.executable}" "$@"\ncode=$?\n'
                      f'echo "$RANK $code" >> "{codes}"\nexit $code\n')
    python.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, 'tests', 'tools'), PORT=str(free_port()),
               PYTHON=sys.executable, PYTHON_EXEC=str(python), CUDA_VISIBLE_DEVICES='')
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    ranks = dict(tuple(map(int, line.split())) for line in codes.read_text().splitlines()) \
        if codes.exists() else {}
    return done.returncode, done.stdout + done.stderr, ranks


def run(command, root, processes=1):
    """:func:`launch` that must end cleanly: the command and each of its ``processes`` ranks
    (torchrun's; none for 1 process) exit 0, and nothing aborted."""
    code, output, ranks = launch(command, root)
    expected = {rank: 0 for rank in range(processes)} if processes > 1 else {}
    assert code == 0 and ranks == expected and 'terminate called' not in output, (
        f'exit code {code}, ranks {ranks}\n' + output[-8000:])


@pytest.fixture(scope='module')
def runs(shapes_data, teacher_checkpoint, tmp_path_factory):
    """``(rank 0, rank 1, single)``: the ProbeHook records of the 2-process and 1-process runs."""
    two = tmp_path_factory.mktemp('two_processes')
    run(['bash', 'tools/dist_train.sh',
         probed_config(two, shapes_data, teacher_checkpoint, GLOBAL_BATCH // 2), '2'], two, 2)
    one = tmp_path_factory.mktemp('one_process')
    run([sys.executable, 'tools/train.py',
         probed_config(one, shapes_data, teacher_checkpoint, GLOBAL_BATCH)], one)
    return tuple(torch.load(path, weights_only=True) for path in
                 (two / 'out' / 'rank0.pt', two / 'out' / 'rank1.pt', one / 'out' / 'rank0.pt'))


def test_dist_train_wraps_the_student_only(runs):
    for rank in runs[:2]:
        assert rank['wrapper'] == 'MMDistributedDataParallel' and rank['world_size'] == 2
        assert rank['device_ids'] is None  # a CPU module: no CUDA device ids
        assert rank['teacher_parameters'] > 0
        assert not rank['teacher_wrapped'] and not rank['teacher_optimized']
        assert rank['student_optimized']
        assert not any('teacher' in key for key in rank['state_dict'])


def test_ranks_end_with_the_same_student(runs):
    rank0, rank1, _ = runs
    assert rank0['state_dict'].keys() == rank1['state_dict'].keys()
    for key, value in rank0['state_dict'].items():
        assert torch.equal(value, rank1['state_dict'][key]), key


def test_rank_mean_loss_equals_one_process_on_the_global_batch(runs):
    rank0, rank1, single = runs
    assert len(single['losses']) == len(rank0['losses']) == ITERS
    keys = ['loss', 'loss_cls'] + [f'distill.loss_{item["name"]}' for item in ITEMS]
    for step, (a, b, expected) in enumerate(zip(rank0['losses'], rank1['losses'],
                                                single['losses'])):
        for key in keys:
            mean = (a[key] + b[key]) / 2
            assert mean == pytest.approx(expected[key], rel=1e-4, abs=1e-6), (step, key)
    for key, value in single['state_dict'].items():
        assert torch.allclose(rank0['state_dict'][key], value, rtol=1e-4, atol=1e-6), key


def kd_config(root, data, teacher_checkpoint):
    """The smallest distillation: the ViT student, KD from the ConvNeXt teacher, 2 iterations of
    1 image per process, then the teacher check's and the end-of-run validations."""
    os.makedirs(root, exist_ok=True)
    distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint),
                       losses=ITEMS[:1])
    cfg = runner_config(data, root / 'work', model=STUDENT, distill_cfg=distill_cfg)
    cfg['train_dataloader']['batch_size'] = 1
    return write_config(root / 'kd.py', cfg)


def test_two_process_runs_exit_cleanly_every_time(shapes_data, teacher_checkpoint, tmp_path):
    """A rank of a finished run used to abort (``terminate called without an active
    exception``, exit code -6) in about one run of five; five runs in a row end cleanly."""
    for attempt in range(5):
        root = tmp_path / f'run{attempt}'
        run(['bash', 'tools/dist_train.sh', kd_config(root, shapes_data, teacher_checkpoint), '2'],
            root, 2)
        assert (root / 'work' / 'iter_2.pth').is_file()


def test_a_failing_two_process_run_exits_1_with_its_message(shapes_data, teacher_checkpoint,
                                                            tmp_path):
    """An error after the process group started (the teacher checkpoint is missing: the model is
    built after it) is the error's own message and exit code 1 for each rank that got to fail,
    never an abort; torchrun stops a rank still running once one has failed (SIGTERM, -15 in its
    summary) and names the first failure, exit code 1, as the root cause."""
    config = kd_config(tmp_path, shapes_data, str(tmp_path / 'missing.pth'))
    code, output, ranks = launch(['bash', 'tools/dist_train.sh', config, '2'], tmp_path)
    assert code == 1, output[-8000:]
    assert 'checkpoint not found' in output and 'terminate called' not in output, output[-8000:]
    assert ranks and set(ranks.values()) == {1}, ranks
    summary = output[output.index('Failures:'):]
    assert set(re.findall(r'exitcode\s*:\s*(-?\d+)', summary)) <= {'1', '-15'}, summary
    assert re.search(r'Root Cause.*\n(.*\n)*?\s*exitcode\s*:\s*1 ', summary), summary
