"""Packaging: adapters/ installs as kdzoo.adapters, kdzoo.losses needs only torch + mmengine."""
import os
import subprocess
import sys

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
