"""pytest configuration: tests/ is on sys.path (pytest's prepend import mode), so tests import
shared tiny models with ``from helpers import ...``.

Under the core install (``bash tools/install.sh --core``: no mmcv, mmdet, mmseg), a test module or
test that fails because one of those is not installed is reported as skipped, with the reason;
under the full install (CI) nothing is converted, so a missing import there still fails.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import warnings

import pytest

warnings.filterwarnings('ignore', message='.*Could not import OneDL.*')

import torch

# Tiny models are fastest on one thread, and do not slow down 10x when another process is busy.
torch.set_num_threads(1)

MISSING = {name for name in ('mmcv', 'mmdet', 'mmseg') if importlib.util.find_spec(name) is None}
REASON = 'needs {} (not in the core install; the full install has it: bash tools/install.sh)'


def missing_framework(error):
    """The missing OpenMMLab framework (``'mmdet'`` ...) an error chain names, or None: an import
    of it, or MMEngine's "<distribution> is not installed" for an ``mmdet::`` / ``mmseg::`` base."""
    from kdzoo.patches import FORKS
    while error is not None:
        if isinstance(error, ModuleNotFoundError):
            name = (error.name or '').split('.')[0]
            if name in MISSING:
                return name
            for module in MISSING & set(FORKS):
                if str(error).startswith(f'{FORKS[module]} is not installed'):
                    return module
        error = error.__cause__ or error.__context__
    return None


class CoreModule(pytest.Module):
    """A test module that is skipped when importing it needs a framework of :data:`MISSING`."""

    def _getobj(self):
        try:
            return super()._getobj()
        except self.CollectError as err:
            name = missing_framework(err)
            if name:
                pytest.skip(f'{self.nodeid}: {REASON.format(name)}', allow_module_level=True)
            raise


def pytest_pycollect_makemodule(module_path, parent):
    if MISSING:
        return CoreModule.from_parent(parent, path=module_path)
    return None


def skipping_missing_frameworks(item):
    """Hook-wrapper body: a test whose setup or call fails on a :data:`MISSING` import skips."""
    try:
        return (yield)
    except Exception as err:
        name = missing_framework(err) if MISSING else None
        if name:
            pytest.skip(f'{item.nodeid}: {REASON.format(name)}')
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from skipping_missing_frameworks(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from skipping_missing_frameworks(item))


@pytest.fixture(scope='session')
def kdzoo_wheel(tmp_path_factory):
    """The wheel built as a release builds it: the source archive (``setup.py sdist``, what
    MANIFEST.in lists) of a clean copy of the repository (no stale ``build/`` of an earlier build
    in it), then ``pip wheel`` of that archive; once per session."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = tmp_path_factory.mktemp('wheel')
    source = root / 'kdzoo'
    skip = shutil.ignore_patterns('build', '*.egg-info', '__pycache__', 'work_dirs', 'data',
                                  'results')

    def ignore(folder, names):  # hidden files and folders too, but kdzoo/.mim (the configs' link)
        return skip(folder, names) | {n for n in names if n.startswith('.') and n != '.mim'}
    shutil.copytree(repo, source, symlinks=True, ignore=ignore)
    subprocess.run([sys.executable, 'setup.py', '-q', 'sdist', '-d', str(root / 'sdist')],
                   cwd=source, check=True, capture_output=True)
    (archive,) = (root / 'sdist').glob('kdzoo-*.tar.gz')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--disable-pip-version-check',
                    '--no-input', '--no-deps', '--no-build-isolation', '-q', '-w',
                    str(root / 'dist'), str(archive)], check=True, capture_output=True)
    (wheel,) = (root / 'dist').glob('kdzoo-*.whl')
    return wheel


def stack_folders():
    """The folders this interpreter imports kdzoo's requirements from (torch, MMEngine, the
    OpenMMLab frameworks, timm) and pip."""
    names = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmseg', 'timm', 'pip', 'yapf')
    specs = [importlib.util.find_spec(name) for name in names]
    return sorted({os.path.dirname(os.path.dirname(s.origin)) for s in specs if s})


@pytest.fixture(scope='session')
def wheel_env(kdzoo_wheel, tmp_path_factory):
    """A fresh environment (``venv --without-pip``) with the wheel installed and the stack this
    interpreter uses, named as plain path lines of a ``.pth``: a path line does not run that
    folder's own ``.pth`` files, so the editable install of kdzoo there stays inert and ``kdzoo``
    can only come from the wheel (with its ``kdzoo`` command in the environment's ``bin``).
    Returns the environment's python; once per session."""
    root = tmp_path_factory.mktemp('wheel_env')
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(root / 'env')], check=True)
    python = str(root / 'env' / 'bin' / 'python')
    site = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                          check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(site, 'kdzoo_test_stack.pth'), 'w') as f:
        f.write(''.join(folder + '\n' for folder in stack_folders()))
    # --ignore-installed: the stack's folders may hold the editable kdzoo's metadata
    out = subprocess.run([python, '-m', 'pip', 'install', '--disable-pip-version-check', '-q',
                          '--no-deps', '--no-index', '--ignore-installed', str(kdzoo_wheel)],
                         capture_output=True, text=True, cwd=str(root))
    assert out.returncode == 0, out.stderr[-3000:]
    return python
