"""Where kdzoo's configs are, and the ``kdzoo::`` names of them.

The repository's ``configs/`` is the one copy. ``kdzoo/.mim/configs`` (MMEngine's place for a
package's configs: ``Config._get_cfg_path`` reads ``<package>/.mim/configs/<path>`` for a
``<scope>::<path>`` name) is, in a checkout, a link to it (committed), and in a wheel a copy of
it (setup.py's build). So ``kdzoo::quickstart/msdcrd.py`` names ``configs/quickstart/msdcrd.py``
of whichever kdzoo is imported, as a command's CONFIG or as a ``_base_`` of a user's config (the
``kdzoo`` scope is registered by :func:`kdzoo.patches.register_config_scopes`).
"""
import os.path as osp

PACKAGE_CONFIGS = osp.join(osp.dirname(osp.abspath(__file__)), '.mim', 'configs')
# The folder holding configs/: the checkout (the link resolved), or kdzoo/.mim of a wheel. The
# plug-and-play profiles name configs relative to it ('configs/plug_and_play/cls/r18.py').
ROOT = osp.dirname(osp.realpath(PACKAGE_CONFIGS))


def config_file(name):
    """The file of the config ``name``: a ``scope::path`` name (``kdzoo::quickstart/msdcrd.py``,
    ``mmdet::...``) resolved as MMEngine resolves a ``_base_`` of that name; any other name, a
    path, is returned as given. ``FileNotFoundError`` naming the file when there is none."""
    if '::' not in name:
        return name
    from mmengine.config import Config
    return Config._get_cfg_path(name, '')[0]
