"""Make MMEngine work with the maintained OpenMMLab forks (``onedl-*``). Applied on ``import kdzoo``
and, in an installed kdzoo, as soon as ``mmengine.config`` is imported (the start-up hook
``kdzoo_startup.py``), so a plain ``mmengine.Config.fromfile`` reads kdzoo's configs.

The forks keep the import names (``mmseg``, ``mmdet``, ...) but not the distribution names, and
MMEngine maps a config scope to a *distribution*: ``'mmseg::...'`` looks up ``mmsegmentation``,
finds nothing, and MMEngine then runs ``python -m pip install mmsegmentation`` - which installs
the dead upstream package over the fork's ``mmseg`` directory (seen with the forks, 2026-11). We
point each scope at the fork's distribution unless the upstream one is installed; when neither
is (the core install), MMEngine's error then names the fork to install. And MMEngine's hub
(``mmengine.hub.get_config('mmseg::...')``, which kdzoo's teacher loading uses) pip-installs a
missing scope's distribution on its own: a stray install into the user's environment, of a package
that needs onedl-mmcv compiled with its C++ ops, which pip cannot build. That becomes an error
naming the install that works.
"""
import sys
from importlib import metadata

FORKS = {
    'mmseg': 'onedl-mmsegmentation',
    'mmdet': 'onedl-mmdetection',
    'mmpretrain': 'onedl-mmpretrain',
}


def _installed(distribution):
    try:
        metadata.distribution(distribution)
        return True
    except metadata.PackageNotFoundError:
        return False


def install_package(package):
    """MMEngine's ``install_package``, without the install: a missing distribution is an error."""
    from mmengine.utils import is_installed
    if not is_installed(package):
        raise ModuleNotFoundError(
            f'{package} is not installed (MMEngine would pip-install it; kdzoo does not let it: '
            'mmseg and mmdet need onedl-mmcv compiled with its C++ ops). Install the full stack '
            'with `bash tools/install.sh`.')


def refuse_hub_installs():
    """Make MMEngine's hub raise :func:`install_package`'s error instead of running pip."""
    from mmengine import utils
    from mmengine.utils import package_utils
    package_utils.install_package = utils.install_package = install_package
    if 'mmengine.hub.hub' in sys.modules:  # imported before kdzoo: it holds its own reference
        sys.modules['mmengine.hub.hub'].install_package = install_package


def register_fork_scopes():
    """Map ``mmseg::`` / ``mmdet::`` / ``mmpretrain::`` config scopes to the forks, and
    :func:`refuse_hub_installs`.

    Returns the mapping applied. Idempotent; a scope whose upstream distribution is installed is
    left alone.
    """
    from mmengine.config import utils
    refuse_hub_installs()
    applied = {}
    for module, fork in FORKS.items():
        upstream = utils.MODULE2PACKAGE.get(module)
        if upstream != fork and not _installed(upstream):
            utils.MODULE2PACKAGE[module] = fork
            applied[module] = fork
    return applied
