"""``pip install kdzoo`` is the product: the wheel, installed into an environment without the
repository (tests/conftest.py's ``wheel_env``), brings the ``kdzoo`` command and the configs.
In an empty folder: ``kdzoo quickstart --fast`` writes its data and runs there, then
``kdzoo train kdzoo::quickstart/msdcrd.py`` and ``kdzoo compare kdzoo::quickstart/msdcrd.py``
train on them, reading the configs installed with the package; nothing is written into the
repository."""
import os
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the --fast quick start trains its teacher for 2 iterations
TEACHER = 'distill_cfg.teacher.checkpoint=work_dirs/quickstart/teacher/iter_2.pth'


def written_since(start):
    """Files of the repository (not its environment, git or caches) modified since ``start``."""
    skip = {'.git', '.venv', '__pycache__', '.pytest_cache', 'build'}
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith('.egg-info')]
        found += [os.path.join(root, f) for f in files
                  if os.path.getmtime(os.path.join(root, f)) >= start]
    return found


@pytest.fixture(scope='module')
def folder(wheel_env, tmp_path_factory):
    """An empty folder, and a function running ``kdzoo ARGS`` of the wheel's environment there
    (its stdout; the command must succeed)."""
    here = tmp_path_factory.mktemp('user')
    kdzoo = os.path.join(os.path.dirname(wheel_env), 'kdzoo')

    def run(*args):
        out = subprocess.run([kdzoo, *args], cwd=here, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-5000:]
        return out.stdout
    return here, run


def test_the_package_and_its_configs_come_from_the_environment(wheel_env, folder):
    here, _ = folder
    env = os.path.dirname(os.path.dirname(wheel_env))
    code = ('import kdzoo; from kdzoo.configs import config_file; print(kdzoo.__file__); '
            "print(config_file('kdzoo::quickstart/msdcrd.py'))")
    out = subprocess.run([wheel_env, '-c', code], cwd=here, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    package, config = out.stdout.split()
    assert package.startswith(env) and config.startswith(env)
    assert config.endswith('/kdzoo/.mim/configs/quickstart/msdcrd.py')
    with open(config) as f, open(os.path.join(REPO, 'configs', 'quickstart', 'msdcrd.py')) as g:
        assert f.read() == g.read()


def test_quickstart_then_train_and_compare_in_an_empty_folder(folder):
    here, kdzoo = folder
    start = time.time()
    out = kdzoo('quickstart', '--fast')
    assert '| run | model | iterations | val top-1 (%) | wall time (s) |' in out
    assert '| teacher |' in out and '| student alone |' in out and '| student + MSDCRD |' in out
    assert 'MSDCRD: one seed: cannot tell (' in out
    assert 'kdzoo compare kdzoo::quickstart/msdcrd.py --seeds 0,1,2' in out
    assert sorted(os.listdir(here / 'data' / 'quickstart')) == ['train', 'val']
    assert (here / 'work_dirs' / 'quickstart' / 'teacher' / 'iter_2.pth').is_file()

    kdzoo('train', 'kdzoo::quickstart/msdcrd.py', '--cfg-options', 'train_cfg.max_iters=2',
          TEACHER)
    assert (here / 'work_dirs' / 'msdcrd' / 'iter_2.pth').is_file()

    out = kdzoo('compare', 'kdzoo::quickstart/msdcrd.py', '--seeds', '0', '--iters', '2',
                '--evals', '1', '--cfg-options', TEACHER)
    assert 'one seed: cannot tell' in out
    compare = here / 'work_dirs' / 'compare' / 'msdcrd'
    assert {'compare.csv', 'compare.md', 'compare.png'} <= set(os.listdir(compare))
    rows = [row.split(',') for row in (compare / 'compare.csv').read_text().splitlines()]
    arm, seed, config = (rows[0].index(name) for name in ('arm', 'seed', 'config'))
    assert [(row[arm], row[seed]) for row in rows[1:]] == [
        ('teacher', '-'), ('alone', '0'), ('distilled', '0')]
    assert all(row[config].endswith('/kdzoo/.mim/configs/quickstart/msdcrd.py') for row in rows[1:])
    assert written_since(start) == []


def test_plug_and_play_profiles_read_the_installed_configs(wheel_env, folder):
    """The profiles name configs as ``configs/...``: read from the package's copy; the default
    output folder is the current directory's."""
    here, _ = folder
    env = os.path.dirname(os.path.dirname(wheel_env))
    code = '''
import os
from kdzoo.configs import ROOT
from kdzoo.experiments import matrix
from kdzoo.experiments.labels import config_label
opts = matrix.resolve('smoke', tasks='cls')
print(ROOT)
print(opts.out)
for configs in opts.task['cls'].pairs.values():
    print(*[config_label(c, ROOT) for c in configs])
'''
    out = subprocess.run([wheel_env, '-c', code], cwd=here, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    root, out_dir, *labels = out.stdout.splitlines()
    assert root.startswith(env) and root.endswith('/kdzoo/.mim')
    assert out_dir == str(here / 'results' / 'smoke')
    assert len(labels) == 2 and all(line.strip() for line in labels)
