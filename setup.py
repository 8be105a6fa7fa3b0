"""kdzoo: heterogeneous knowledge distillation for OpenMMLab and timm.

The top-level folder ``adapters/`` is installed as the package ``kdzoo.adapters`` (not as a
top-level ``adapters`` module, which would collide with an unrelated package of that name).

Requirements: ``install_requires`` is what ``import kdzoo.losses``, the distiller and the
experiment tools use: torch, the maintained MMEngine fork ``onedl-mmengine`` (it installs the
``mmengine`` module; the upstream ``mmengine`` distribution is unmaintained), opencv-python
(MMEngine's hooks import cv2 without requiring it), numpy, Pillow (the generated data sets) and
matplotlib (reports). Each task's extra names its frameworks: ``[cls]`` timm, torchvision and
tensorboard (the classification and quick-start configs log to it), ``[seg]`` / ``[det]`` the
mmsegmentation / mmdetection forks, ``[onnx]`` the ONNX export and its parity check, ``[test]``
pytest. Segmentation and detection also need
``onedl-mmcv`` *compiled with its C++ ops against the installed torch*, which no requirement can
express: ``bash tools/install.sh`` builds it (docs/deploy.md, "Installing"); their extras keep
torch below 2.14, whose headers need C++20 while onedl-mmcv 2.3.6 builds its ops as C++17
(classification runs on newer torch: a fresh ``pip install kdzoo[cls]`` got torch 2.14.1 and ran
the quick start).

The configs: the repository's ``configs/`` is the one copy. The wheel's build copies it to
``kdzoo/.mim/configs`` (with ``kdzoo/.mim/model-index.yml``), where MMEngine looks for a
``kdzoo::<path>`` config; in the checkout (the editable install) ``kdzoo/.mim/configs`` is a
committed link to ``configs/`` (kdzoo/configs.py).

The ``kdzoo`` command (``kdzoo train``, ``kdzoo quickstart``, ...): kdzoo/cli.py.

The start-up hook: the wheel and the editable install both put ``kdzoo_startup.pth`` in
site-packages; it runs ``kdzoo_startup.install()`` at interpreter start, which acts only when
MMEngine is imported (see ``kdzoo_startup.py``; the patches it applies are in
``kdzoo/patches.py``). setuptools writes only its own finder into an
editable wheel, hence the second command class.
"""
import base64
import glob
import hashlib
import os
import shutil
import zipfile

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = os.path.dirname(os.path.abspath(__file__))  # the checkout or the unpacked sdist
STARTUP_PTH = 'kdzoo_startup.pth'
STARTUP_LINE = b'import kdzoo_startup; kdzoo_startup.install()\n'


class BuildPyWithStartupHook(build_py):
    """build_py, plus the start-up ``.pth`` at the top of the build (site-packages in a wheel)
    and a copy of ``configs/`` in ``kdzoo/.mim`` (the files, not the checkout's link)."""

    def run(self):
        super().run()
        os.makedirs(self.build_lib, exist_ok=True)
        with open(os.path.join(self.build_lib, STARTUP_PTH), 'wb') as f:
            f.write(STARTUP_LINE)
        mim = os.path.join(self.build_lib, 'kdzoo', '.mim')
        shutil.rmtree(mim, ignore_errors=True)  # a stale copy of an earlier build
        shutil.copytree(os.path.join(HERE, 'configs'), os.path.join(mim, 'configs'),
                        ignore=shutil.ignore_patterns('__pycache__'))
        shutil.copy(os.path.join(HERE, 'kdzoo', '.mim', 'model-index.yml'), mim)


class EditableWheelWithStartupHook(editable_wheel):
    """editable_wheel, plus the start-up ``.pth`` added to the editable wheel it wrote."""

    def run(self):
        super().run()
        for path in glob.glob(os.path.join(self.dist_dir, 'kdzoo-*.whl')):
            add_to_wheel(path, STARTUP_PTH, STARTUP_LINE)


def add_to_wheel(path, name, data):
    """Add the file ``name`` with bytes ``data`` at the root of the wheel ``path``, listed in
    its RECORD (name, sha256, size), as the wheel format requires."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    with zipfile.ZipFile(path) as wheel:
        entries = [(info, wheel.read(info)) for info in wheel.infolist()]
    if any(info.filename == name for info, _ in entries):
        return
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr(name, data)
        for info, content in entries:
            if info.filename.endswith('.dist-info/RECORD'):
                content = content.rstrip(b'\n') + f'\n{name},sha256={digest},{len(data)}\n'.encode()
            wheel.writestr(info, content)


kdzoo_packages = find_packages(include=['kdzoo', 'kdzoo.*'])
adapter_packages = ['kdzoo.adapters'] + [
    'kdzoo.adapters.' + p for p in find_packages(where='adapters')]

setup(
    name='kdzoo',
    version='0.1.0',
    description='Knowledge distillation across architecture families for OpenMMLab and timm',
    long_description=open(os.path.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=kdzoo_packages + adapter_packages,
    package_dir={'kdzoo.adapters': 'adapters'},
    py_modules=['kdzoo_startup'],
    entry_points={'console_scripts': ['kdzoo = kdzoo.cli:main']},
    cmdclass={'build_py': BuildPyWithStartupHook, 'editable_wheel': EditableWheelWithStartupHook},
    install_requires=['torch>=2.1', 'onedl-mmengine>=0.10.12', 'opencv-python', 'numpy', 'Pillow',
                      'matplotlib'],
    extras_require={
        'cls': ['timm>=1.0.31', 'torchvision', 'tensorboard'],
        'seg': ['onedl-mmsegmentation>=1.4.2', 'torch<2.14'],
        'det': ['onedl-mmdetection>=3.5.1', 'torch<2.14'],
        'onnx': ['onnx>=1.18', 'onnxruntime>=1.22', 'onnxscript>=0.5'],
        'test': ['pytest'],
    },
)
