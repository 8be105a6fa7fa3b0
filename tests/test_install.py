"""Installing kdzoo as a user does: ``pip install`` of the built wheel into a fresh virtual
environment with torch and onedl-mmengine only; the start-up hook (kdzoo_startup.py) that makes a
plain ``mmengine.Config.fromfile`` read kdzoo's configs, at no cost to an interpreter's start."""
import os
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python(code, executable=sys.executable, cwd='/'):
    """Run ``code`` in a fresh interpreter outside the repository; its stdout."""
    out = subprocess.run([executable, '-c', textwrap.dedent(code)], cwd=cwd,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_interpreter_start_imports_neither_kdzoo_nor_mmengine():
    out = python('''
        import sys
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('kdzoo', 'mmengine', 'torch')))
        ''')
    assert out.strip() == '[]'


def test_start_up_hook_patches_mmengine_on_import_then_leaves():
    """The hook's finder (kdzoo_startup.py) is on sys.meta_path until MMEngine's config and runner
    are imported; then the fork scopes and the guard are in place and the finder is gone."""
    out = python('''
        import sys
        def finders():
            return sum(type(f).__name__ == 'AfterImportFinder' for f in sys.meta_path)
        print(finders())
        import mmengine.config
        from mmengine.config.utils import MODULE2PACKAGE
        print(finders(), MODULE2PACKAGE['mmseg'])
        import mmengine.runner
        print(finders(), mmengine.runner.Runner.train.kdzoo_guarded)
        ''')
    assert out.split('\n')[:3] == ['1', '1 onedl-mmsegmentation', '0 True']


def test_core_tools_import_without_mmcv_mmdet_mmseg():
    """What the core install serves (the tools on classification configs, the classification
    adapter, the ONNX export) imports nothing of mmcv, mmdet or mmseg at module level."""
    tools = ('train', 'test', 'quickstart', 'compare', 'analyze', 'export_student')
    out = python(f'''
        import importlib.util, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('mmcv', 'mmdet', 'mmseg'):
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        import kdzoo.adapters.cls, kdzoo.export, kdzoo.losses
        for tool in {tools!r}:
            path = {os.path.join(REPO, 'tools')!r} + '/' + tool + '.py'
            spec = importlib.util.spec_from_file_location('tools.' + tool, path)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        print('ok')
        ''')
    assert out.strip() == 'ok'


def test_plain_config_fromfile_reads_seg_and_det_configs_without_importing_kdzoo():
    """mmseg's / mmdet's own tools parse a config with ``Config.fromfile`` alone: the ``mmseg::``
    and ``mmdet::`` bases resolve to the installed forks (and nothing is pip-installed)."""
    pytest.importorskip('mmseg', reason='the seg and det configs need the full install')
    pytest.importorskip('mmdet', reason='the seg and det configs need the full install')
    out = python(f'''
        import sys
        from mmengine.config import Config
        from mmengine.utils import package_utils
        def refuse(*args, **kwargs):
            raise AssertionError(f'an install was attempted: {{args}}')
        package_utils.call_command = refuse
        seg = Config.fromfile({os.path.join(REPO, 'configs', 'seg', 'msdcrd_swin_to_r18.py')!r})
        det = Config.fromfile({os.path.join(REPO, 'configs', 'det', 'quickstart_pkd.py')!r})
        print(seg.model.type, seg.model.backbone.depth, 'distill_cfg' in seg)
        print(det.model.type, det.model.backbone.depth, 'distill_cfg' in det)
        ''')
    assert out.split('\n')[:2] == ['EncoderDecoder 18 True', 'RetinaNet 18 True']


def test_wheel_installs_into_a_fresh_venv_with_torch_and_mmengine_only(kdzoo_wheel, tmp_path):
    """Install the wheel with pip into a new venv (its requirements resolved by pip, torch pinned
    to this environment's version so pip's cache can serve it); then ``import kdzoo.losses`` and
    one loss, from outside the repository, and the start-up hook."""
    torch_version = metadata.version('torch').split('+')[0]
    pip = ['-m', 'pip', '--disable-pip-version-check', '--no-input']
    subprocess.run([sys.executable, '-m', 'venv', str(tmp_path / 'venv')], check=True)
    venv_python = str(tmp_path / 'venv' / 'bin' / 'python')
    out = subprocess.run([venv_python, *pip, 'install', '-q', str(kdzoo_wheel),
                          f'torch=={torch_version}'], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    out = python('''
        import sys
        assert 'kdzoo' not in sys.modules
        import torch
        import kdzoo.losses
        from kdzoo.losses import KDLoss
        value = KDLoss()(torch.randn(4, 10), torch.randn(4, 10))
        assert value.ndim == 0 and torch.isfinite(value)
        import mmengine.runner
        print(kdzoo.__file__)
        print(mmengine.runner.Runner.train.kdzoo_guarded)
        from importlib import metadata, util
        print(sorted(name for name in ('mmcv', 'mmdet', 'mmseg', 'timm') if util.find_spec(name)))
        print(metadata.version('onedl-mmengine'))
        ''', venv_python, cwd=str(tmp_path))
    path, guarded, frameworks, _ = out.strip().split('\n')
    assert path.startswith(str(tmp_path / 'venv')) and guarded == 'True' and frameworks == '[]'
