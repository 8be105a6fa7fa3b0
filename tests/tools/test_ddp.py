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


def launch_env(root, **env):
    """The environment of a launch: CUDA hidden, ``tests/tools`` importable, a free rendezvous
    port (unless ``env`` gives PORT), and torchrun starting each rank with the executable
    ``PYTHON_EXEC`` names (torch/distributed/run.py): here a script that runs Python and appends
    the rank's exit code to ``root/exit_codes``."""
    codes, python = root / 'exit_codes', root / 'rank_python'
    python.write_text(f'#!/bin/sh\n"{sys.executable}" "$@"\ncode=$?\n'
                      f'echo "$RANK $code" >> "{codes}"\nexit $code\n')
    python.chmod(0o755)
    return dict(os.environ, **{'PYTHONPATH': os.path.join(REPO, 'tests', 'tools'),
                               'PORT': str(free_port()), 'PYTHON': sys.executable,
                               'PYTHON_EXEC': str(python), 'CUDA_VISIBLE_DEVICES': '', **env})


def exit_codes(root):
    codes = root / 'exit_codes'
    return dict(tuple(map(int, line.split())) for line in codes.read_text().splitlines()) \
        if codes.exists() else {}


def launch(command, root, cwd=REPO, **env):
    """Run ``command`` in ``cwd`` to its end; returns ``(exit code, output, {rank: exit
    code})``."""
    done = subprocess.run(command, cwd=cwd, env=launch_env(root, **env), capture_output=True,
                          text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr, exit_codes(root)


def check_clean(code, output, ranks, processes):
    """The command and each of its ``processes`` ranks (torchrun's; none for 1 process) exited
    0, and nothing aborted."""
    expected = {rank: 0 for rank in range(processes)} if processes > 1 else {}
    assert code == 0 and ranks == expected and 'terminate called' not in output, (
        f'exit code {code}, ranks {ranks}\n' + output[-8000:])


def run(command, root, processes=1, cwd=REPO, **env):
    """:func:`launch` that must end cleanly (:func:`check_clean`); returns the output."""
    code, output, ranks = launch(command, root, cwd, **env)
    check_clean(code, output, ranks, processes)
    return output


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


# --- launching: the user's paths, several nodes, Slurm ------------------------------------------

DIST_TRAIN = os.path.join(REPO, 'tools', 'dist_train.sh')
SLURM_TRAIN = os.path.join(REPO, 'tools', 'slurm_train.sh')
# srun for the test: starts --ntasks copies of the command on this machine with Slurm's variables.
FAKE_SRUN = '''#!/bin/bash
ntasks=1
while [ $# -gt 0 ]; do
  case $1 in
    --ntasks=*) ntasks=${1#--ntasks=}; shift;;
    -p) shift 2;;
    -*) shift;;
    *) break;;
  esac
done
for ((i = 0; i < ntasks; i++)); do
  SLURM_PROCID=$i SLURM_NTASKS=$ntasks SLURM_LOCALID=$i SLURM_NODELIST=localhost RANK=$i "$@" &
done
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
exit $status
'''


def student_weights(work_dir):
    from kdzoo.checkpoint import load_file, state_dict_of
    return state_dict_of(load_file(str(work_dir / 'iter_2.pth')))


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


@pytest.fixture(scope='module')
def one_node(shapes_data, teacher_checkpoint, tmp_path_factory):
    """``(root, output)`` of a 1-node 2-process run started in ``root`` with relative paths:
    ``tools/dist_train.sh run/kd.py 2 --work-dir work``."""
    root = tmp_path_factory.mktemp('one_node')
    kd_config(root / 'run', shapes_data, teacher_checkpoint)
    output = run(['bash', DIST_TRAIN, 'run/kd.py', '2', '--work-dir', 'work'], root, 2, cwd=root)
    return root, output


def test_dist_train_reads_relative_paths_from_the_user_s_directory(one_node):
    """The script used to change to the repository first: the config was not found there, and a
    relative work dir would have landed inside the checkout."""
    root, _ = one_node
    assert (root / 'work' / 'iter_2.pth').is_file()
    assert not (root / 'run' / 'work').exists()  # --work-dir replaced the config's own
    assert not os.path.exists(os.path.join(REPO, 'work'))


@pytest.mark.parametrize('argv', [[DIST_TRAIN, 'missing.py', '2'],
                                  [SLURM_TRAIN, 'cpu', 'job', 'missing.py', 'work']],
                         ids=['dist_train', 'slurm_train'])
def test_a_missing_config_stops_before_the_launch(tmp_path, argv):
    done = subprocess.run(['bash', *argv], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == f'config not found: missing.py (paths are read from {tmp_path})\n'


def test_two_nodes_of_one_process_train_the_two_process_student(one_node, shapes_data,
                                                                teacher_checkpoint, tmp_path):
    """NNODES=2 with NODE_RANK 0 and 1 on localhost (two torchrun launches, gloo): the same
    student, bit for bit, as 2 processes on one node."""
    config = kd_config(tmp_path, shapes_data, teacher_checkpoint)
    port = str(free_port())
    # torchrun gives each rank one intra-op thread when it starts more than one process on a
    # node (OMP_NUM_THREADS=1), not for one process: set so here, as on the one node, since
    # another thread count sums floats in another order
    envs = [launch_env(tmp_path, NNODES='2', NODE_RANK=str(rank), MASTER_ADDR='127.0.0.1',
                       PORT=port, OMP_NUM_THREADS='1') for rank in (0, 1)]
    nodes = [subprocess.Popen(['bash', DIST_TRAIN, config, '1'], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for env in envs]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    for node, output in zip(nodes, outputs):
        check_clean(node.returncode, output, {}, 1)
    assert exit_codes(tmp_path) == {0: 0, 1: 0}  # one rank per node, world size 2
    assert_same_weights(student_weights(tmp_path / 'work'), student_weights(one_node[0] / 'work'))


def test_slurm_train_starts_one_task_per_process(one_node, shapes_data, teacher_checkpoint,
                                                 tmp_path):
    """tools/slurm_train.sh under an srun that starts its tasks here (Slurm's variables set as
    srun sets them, CUDA hidden): --launcher slurm trains the 2-process student, bit for bit."""
    config = kd_config(tmp_path / 'run', shapes_data, teacher_checkpoint)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(FAKE_SRUN)
    (bin_dir / 'srun').chmod(0o755)
    run(['bash', SLURM_TRAIN, 'cpu', 'kd', config, str(tmp_path / 'work')], tmp_path, 2,
        GPUS='2', GPUS_PER_NODE='2', NO_GRES='1', MASTER_ADDR='127.0.0.1', OMP_NUM_THREADS='1',
        PATH=f'{bin_dir}:{os.environ["PATH"]}', PYTHON=str(tmp_path / 'rank_python'))
    assert_same_weights(student_weights(tmp_path / 'work'), student_weights(one_node[0] / 'work'))


def test_slurm_launcher_outside_srun_says_so(tmp_path, shapes_data, teacher_checkpoint):
    config = kd_config(tmp_path, shapes_data, teacher_checkpoint)
    code, output, _ = launch([sys.executable, 'tools/train.py', config, '--launcher', 'slurm'],
                             tmp_path)
    assert code == 1
    assert ('RuntimeError: --launcher slurm: SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST not set: '
            'start the processes with srun (a checkout\'s tools/slurm_train.sh does), or use '
            '--launcher pytorch with torchrun (torchrun -m kdzoo train ..., or a checkout\'s '
            'tools/dist_train.sh)') in output, output[-3000:]


# --- segmentation with SyncBN and detection, 2 processes on the CPU -----------------------------

SEG_CONFIG = '''_base_ = {base!r}
data_root = {data!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2)
distill_cfg = dict(teacher=dict(checkpoint={teacher!r}), teacher_check=False)
'''
DET_CONFIG = '''_base_ = {base!r}
data_root = {data!r}
train_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={ann!r})
test_evaluator = val_evaluator
train_cfg = dict(max_iters=2)
distill_cfg = dict(teacher=dict(checkpoint={teacher!r}), teacher_check=False)
'''


def test_seg_quickstart_with_syncbn_trains_on_two_cpu_processes(tmp_path):
    """The mmseg base model's norm_cfg is SyncBN: DDP used to refuse it on the CPU on both ranks
    (``SyncBatchNorm layers only work with GPU modules``); it becomes BN, with a line."""
    pytest.importorskip('mmseg', reason='segmentation needs the full install')
    from mmengine.config import Config

    from kdzoo.adapters.mmseg.distill import build_mmseg
    from kdzoo.teacher import model_config
    from kdzoo.toydata import make_seg_dataset
    base = os.path.join(REPO, 'configs', 'seg', 'quickstart_msdcrd.py')
    assert Config.fromfile(base).model.backbone.norm_cfg.type == 'SyncBN'
    data = make_seg_dataset(str(tmp_path / 'data'), num_images=(4, 1))
    torch.manual_seed(0)
    teacher = build_mmseg(model_config(os.path.join(REPO, 'configs', 'seg',
                                                    'quickstart_teacher.py')))
    torch.save(teacher.state_dict(), tmp_path / 'teacher.pth')
    config = tmp_path / 'seg.py'
    config.write_text(SEG_CONFIG.format(base=base, data=data,
                                        teacher=str(tmp_path / 'teacher.pth')))
    output = run(['bash', DIST_TRAIN, str(config), '2', '--work-dir', str(tmp_path / 'work')],
                 tmp_path, 2)
    assert ('SyncBN -> BN for multi-process training on the CPU (model.student.backbone.norm_cfg, '
            'model.student.decode_head.norm_cfg, model.student.auxiliary_head.norm_cfg): '
            'SyncBatchNorm needs CUDA; each process normalises with its own batch statistics'
            ) in output, output[-3000:]
    weights = student_weights(tmp_path / 'work')
    assert weights and all(torch.isfinite(v).all() for v in weights.values()
                           if v.is_floating_point())


def test_det_quickstart_trains_on_two_cpu_processes(tmp_path):
    pytest.importorskip('mmdet', reason='detection needs the full install')
    from kdzoo.adapters.mmdet.distill import build_mmdet
    from kdzoo.teacher import model_config
    from kdzoo.toydata import make_det_dataset
    data = make_det_dataset(str(tmp_path / 'data'), num_images=(4, 1), size=128)
    torch.manual_seed(0)
    teacher = build_mmdet(model_config(os.path.join(
        REPO, 'configs', 'det', 'quickstart_retinanet_swin_teacher.py')))
    teacher.init_weights()
    torch.save(teacher.state_dict(), tmp_path / 'teacher.pth')
    config = tmp_path / 'det.py'
    config.write_text(DET_CONFIG.format(
        base=os.path.join(REPO, 'configs', 'det', 'quickstart_pkd.py'), data=data['root'] + '/',
        ann=data['val_ann'], teacher=str(tmp_path / 'teacher.pth')))
    run(['bash', DIST_TRAIN, str(config), '2', '--work-dir', str(tmp_path / 'work')], tmp_path, 2)
    weights = student_weights(tmp_path / 'work')
    assert weights and all(torch.isfinite(v).all() for v in weights.values()
                           if v.is_floating_point())


def test_cache_teacher_in_two_processes_fills_the_positions_each_rank_reads(
        shapes_data, teacher_checkpoint, tmp_path):
    """tools/cache_teacher.py --launcher pytorch: each rank stores its own stream positions; the
    2-process training run, and a 1-process run of the same global batch, then read every step's
    teacher outputs: no rank computes a row (it would store it in a shard of its own)."""
    config = kd_config(tmp_path, shapes_data, teacher_checkpoint)
    cache = tmp_path / 'cache'
    for launch_root in ('fill', 'two', 'one'):
        (tmp_path / launch_root).mkdir()
    port = free_port()
    run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={port}', 'tools/cache_teacher.py', config, '--cache', str(cache),
         '--launcher', 'pytorch', '--work-dir', str(tmp_path / 'fill')], tmp_path / 'fill', 2,
        PORT=str(port))
    shards = sorted(path.name for path in cache.glob('shard-*'))
    assert [name.split('-')[1:6] for name in shards] == [
        ['r0', 'w2', '000000000000', '000000000002', '2'],
        ['r1', 'w2', '000000000001', '000000000003', '2']]
    read = ['--cfg-options', f'distill_cfg.teacher.cache={cache}']
    output = run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir',
                  str(tmp_path / 'two')] + read, tmp_path / 'two', 2)
    assert f'teacher cache {cache}: holds the 4 samples of this run' in output
    assert sorted(path.name for path in cache.glob('shard-*')) == shards
    output = run([sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path / 'one')]
                 + read + ['train_dataloader.batch_size=2'], tmp_path / 'one')
    assert 'written by 2 process(es) x batch 1, read by 1 x 2' in output
    assert f'teacher cache {cache}: 4 samples read, 0 computed by the teacher' in output
    assert sorted(path.name for path in cache.glob('shard-*')) == shards
