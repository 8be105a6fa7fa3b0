"""No pickled code runs through any entry point: a checkpoint whose unpickling would create a
marker file, given to each tool as a user would (load_from, --resume, CKPT, --checkpoint), in a
fresh process each (the hardening must come from the entry point itself, not from this test
process). MMEngine's own loader fell back to unrestricted unpickling (tools/test.py with
``--cfg-options load_from=...`` or a config's ``load_from`` ran the pickle)."""
import os
import subprocess
import sys

import pytest
import torch
from tools_helpers import REPO, SEED_LOSSES

REFUSED = 'refused by torch.load(weights_only=True)'


class Bomb:
    """Unpickles by creating the file ``marker``: proof that pickled code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, 'w')


@pytest.fixture
def bomb(tmp_path):
    """``(path of the bomb checkpoint, marker path)``: a training checkpoint's layout with one
    pickled call inside."""
    marker = tmp_path / 'pickle_ran'
    path = tmp_path / 'bomb.pth'
    torch.save({'state_dict': {}, 'meta': {'iter': 2, 'x': Bomb(str(marker))}}, path)
    return str(path), marker


def run(*args):
    """``python *args`` in a fresh process at the repository root; ``(returncode, stderr)``."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, 'tests', 'tools'))
    out = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    return out.returncode, out.stderr


def assert_refused(result, marker, message=REFUSED):
    returncode, stderr = result
    assert not marker.exists(), 'the pickle ran'
    assert returncode != 0 and message in stderr.strip().splitlines()[-1], stderr[-3000:]


def test_train_load_from(trained, bomb, tmp_path):
    config = trained('kd', SEED_LOSSES['kd'])[0]
    path, marker = bomb
    assert_refused(run('tools/train.py', config, '--work-dir', str(tmp_path / 'w'),
                       '--cfg-options', f'load_from={path}'), marker)


def test_train_resume(trained, bomb, tmp_path):
    config = trained('kd', SEED_LOSSES['kd'])[0]
    path, marker = bomb
    assert_refused(run('tools/train.py', config, '--work-dir', str(tmp_path / 'w'),
                       '--resume', path), marker)


def test_test_ckpt_and_load_from(trained, bomb, tmp_path):
    """As CKPT, as ``--cfg-options load_from`` (an error now: it would load over CKPT) and as the
    config's ``load_from`` (ignored now, with a line)."""
    config, work_dir = trained('kd', SEED_LOSSES['kd'])[:2]
    path, marker = bomb
    checkpoint = str(work_dir / 'iter_2.pth')
    assert_refused(run('tools/test.py', config, path, '--work-dir', str(tmp_path / 't1')), marker)
    assert_refused(run('tools/test.py', config, checkpoint, '--work-dir', str(tmp_path / 't2'),
                       '--cfg-options', f'load_from={path}'), marker,
                   f'--cfg-options load_from={path} would load other weights over CKPT')
    with_load_from = tmp_path / 'with_load_from.py'
    with_load_from.write_text(open(config).read() + f'load_from = {path!r}\n')
    returncode, stderr = run('tools/test.py', str(with_load_from), checkpoint, '--work-dir',
                             str(tmp_path / 't3'))
    assert not marker.exists() and returncode == 0, stderr[-3000:]
    assert f'kdzoo test: ignoring load_from={path} of the config' in stderr


def test_export_student(trained, bomb, tmp_path):
    config = trained('kd', SEED_LOSSES['kd'])[0]
    path, marker = bomb
    assert_refused(run('tools/export_student.py', config, path, str(tmp_path / 's.pth')), marker)
    assert not (tmp_path / 's.pth').exists()


def test_analyze_checkpoint(trained, bomb, tmp_path):
    config = trained('kd', SEED_LOSSES['kd'])[0]
    path, marker = bomb
    assert_refused(run('tools/analyze.py', config, '--checkpoint', path, '--batches', '1',
                       '--out', str(tmp_path / 'a')), marker)


def test_experiment_runner_of_compare_plug_and_play_and_quickstart(trained, bomb, tmp_path):
    """compare, plug-and-play and the quick start build every run with
    ``kdzoo.experiments.runs.make_runner`` (kdzoo.runner.build_runner): a ``load_from`` in their
    options is refused there."""
    config = trained('kd', SEED_LOSSES['kd'])[0]
    path, marker = bomb
    code = ('from kdzoo.experiments.runs import make_runner; '
            f'make_runner({config!r}, {str(tmp_path / "w")!r}, {{"load_from": {path!r}}}).train()')
    assert_refused(run('-c', code), marker)
