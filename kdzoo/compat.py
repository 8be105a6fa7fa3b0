"""Make MMEngine work with the maintained OpenMMLab forks (``onedl-*``). Applied on ``import kdzoo``
and, in an installed kdzoo, as soon as ``mmengine.config`` is imported (the start-up hook
``kdzoo_startup.py``), so a plain ``mmengine.Config.fromfile`` reads kdzoo's configs.

The forks keep the import names (``mmseg``, ``mmdet``, ...) but not the distribution names, and
MMEngine maps a config scope to a *distribution*: ``'mmseg::...'`` looks up ``mmsegmentation``,
finds nothing, and MMEngine then runs ``python -m pip install mmsegmentation`` - which installs
the dead upstream package over the fork's ``mmseg`` directory (seen with the forks, 2026-11). We point each
scope at the fork's distribution unless the upstream one is installed; when neither is (the core
install), MMEngine's error then names the fork to install.
"""
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


def register_fork_scopes():
    """Map ``mmseg::`` / ``mmdet::`` / ``mmpretrain::`` config scopes to the installed forks.

    Returns the mapping applied. Idempotent; a scope whose upstream distribution is installed is
    left alone.
    """
    from mmengine.config import utils
    applied = {}
    for module, fork in FORKS.items():
        upstream = utils.MODULE2PACKAGE.get(module)
        if upstream != fork and not _installed(upstream):
            utils.MODULE2PACKAGE[module] = fork
            applied[module] = fork
    return applied
