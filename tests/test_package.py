"""Packaging: adapters/ installs as kdzoo.adapters, kdzoo.losses needs only torch + mmengine, and
the wheel holds every module of the repository: installed into a fresh environment, each imports
from there and the experiment engine runs a paired comparison."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import kdzoo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_adapters_install_as_kdzoo_adapters_not_top_level():
    import kdzoo.adapters
    installed = os.path.dirname(kdzoo.adapters.__file__)
    assert os.path.samefile(installed, os.path.join(REPO, 'adapters'))
    code = 'import importlib.util; print(importlib.util.find_spec("adapters"))'
    out = subprocess.run([sys.executable, '-c', code], cwd='/', capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == 'None', f'a top-level `adapters` module is importable: {out}'


def test_losses_import_with_torch_and_mmengine_alone():
    """Import kdzoo.losses and kdzoo.connectors with mmcv, mmdet, mmseg and timm made
    unimportable."""
    code = '''
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmcv', 'mmdet', 'mmseg', 'timm', 'cv2'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import kdzoo.losses, kdzoo.connectors, kdzoo.distiller
from kdzoo.registry import build
build(dict(type='MSDCRDLoss')); build(dict(type='Projector', in_channels=2, out_channels=3))
print('ok')
'''
    out = subprocess.run([sys.executable, '-c', code], cwd='/', capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == 'ok', out.stderr


def test_version_is_exposed():
    assert kdzoo.__version__


# --- the wheel, installed into a fresh environment ----------------------------------------------
def repository_modules():
    """Every module of the repository's ``kdzoo`` package as the wheel must install it
    (``adapters/`` becomes ``kdzoo.adapters``)."""
    names = set()
    for folder, package in (('kdzoo', 'kdzoo'), ('adapters', 'kdzoo.adapters')):
        for root, dirs, files in os.walk(os.path.join(REPO, folder)):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            parts = os.path.relpath(root, os.path.join(REPO, folder)).split(os.sep)
            prefix = '.'.join([package] + [p for p in parts if p != '.'])
            names.update(prefix if f == '__init__.py' else f'{prefix}.{f[:-3]}'
                         for f in files if f.endswith('.py'))
    return names


def load_tools_helpers():
    """tests/tools/tools_helpers.py (the tools tests' config writer), by its path."""
    path = os.path.join(REPO, 'tests', 'tools', 'tools_helpers.py')
    spec = importlib.util.spec_from_file_location('tools_helpers', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WHEEL_SCRIPT = '''
import importlib, json, os, pkgutil, sys
assert not any(p.rstrip('/') == REPO for p in sys.path), sys.path
import kdzoo

# (a) every module of the package, imported from the environment
modules, needs = {}, {}
def walk_error(name):
    raise sys.exc_info()[1]
for info in pkgutil.walk_packages(kdzoo.__path__, 'kdzoo.', onerror=walk_error):
    try:
        modules[info.name] = importlib.import_module(info.name).__file__
    except ModuleNotFoundError as err:  # the core install: a framework it does not have
        if (err.name or '').split('.')[0] not in MISSING:
            raise
        needs[info.name] = err.name
modules['kdzoo'] = kdzoo.__file__
modules['kdzoo_startup'] = importlib.import_module('kdzoo_startup').__file__

# (b) a 2-iteration paired comparison through the library, on generated data
from kdzoo.experiments.compare_report import summary_lines
from kdzoo.experiments.paired import compare
from kdzoo.runner import load_config
from kdzoo.toydata import make_shapes_dataset
make_shapes_dataset(DATA, num_classes=4, per_class=(4, 2))
rows, ran = compare(CONFIG, load_config(CONFIG), seeds=[0], iters=2, evals=1,
                    work_dir=WORK_DIR)
print(json.dumps(dict(modules=modules, needs=needs, rows=rows, ran=ran,
                      summary=summary_lines(rows, [0]))))
'''


def test_wheel_holds_every_module_and_runs_a_paired_comparison(wheel_env, tmp_path):
    """Installed from the wheel alone, without the repository on sys.path: every module of
    ``kdzoo`` (walked, not listed) imports from the environment, and ``kdzoo.experiments`` runs a
    2-iteration paired comparison of a generated config (student alone vs distilled, seed 0)."""
    helpers = load_tools_helpers()
    data = {split: str(tmp_path / 'data' / split) for split in ('train', 'val')}
    distill_cfg = dict(teacher=dict(config=helpers.TEACHER), losses=[
        dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='kd')])
    config = helpers.write_config(tmp_path / 'kd.py', helpers.runner_config(
        data, tmp_path / 'work', distill_cfg=distill_cfg))
    missing = sorted(name for name in ('mmcv', 'mmdet', 'mmseg')
                     if importlib.util.find_spec(name) is None)
    script = f'REPO, DATA, CONFIG, WORK_DIR, MISSING = {REPO!r}, ' \
             f'{str(tmp_path / "data")!r}, {config!r}, {str(tmp_path / "compare")!r}, ' \
             f'{missing!r}\n' + WHEEL_SCRIPT
    out = subprocess.run([wheel_env, '-c', textwrap.dedent(script)], cwd=str(tmp_path),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-5000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    env = os.path.dirname(os.path.dirname(wheel_env))
    modules = result['modules']
    assert set(modules) | set(result['needs']) == repository_modules() | {'kdzoo_startup'}
    # only the core install (no mmcv, mmdet, mmseg) leaves out the adapters that need them
    assert all(name.startswith(('kdzoo.adapters.mmdet', 'kdzoo.adapters.mmseg'))
               for name in result['needs']) and (missing or not result['needs'])
    outside = {name: path for name, path in modules.items() if not path.startswith(env)}
    assert not outside, f'imported from outside the wheel environment: {outside}'
    rows = result['rows']
    assert [(r['arm'], r['seed']) for r in rows] == [
        ('teacher', '-'), ('alone', '0'), ('distilled', '0')]
    alone, distilled = rows[1:]
    assert alone['iters'] == distilled['iters'] == '2' and result['ran']
    assert alone['init_sha'] == distilled['init_sha']
    assert alone['batches_sha'] == distilled['batches_sha']
    assert any('one seed: cannot tell' in line for line in result['summary'])
