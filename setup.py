"""kdzoo: heterogeneous knowledge distillation for OpenMMLab and timm.

The top-level folder ``adapters/`` is installed as the package ``kdzoo.adapters`` (not as a
top-level ``adapters`` module, which would collide with an unrelated package of that name).
The supported install path is ``bash tools/install.sh`` (pinned stack, mmcv built with ops).
"""
from setuptools import find_packages, setup

kdzoo_packages = find_packages(include=['kdzoo', 'kdzoo.*'])
adapter_packages = ['kdzoo.adapters'] + [
    'kdzoo.adapters.' + p for p in find_packages(where='adapters')]

setup(
    name='kdzoo',
    version='0.1.0',
    description='Knowledge distillation across architecture families for OpenMMLab and timm',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=kdzoo_packages + adapter_packages,
    package_dir={'kdzoo.adapters': 'adapters'},
    install_requires=['torch>=2.1', 'mmengine>=0.10'],
    extras_require={'cls': ['timm>=1.0'], 'test': ['pytest']},
)
