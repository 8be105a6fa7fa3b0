"""The one kdzoo registry.

``MODELS`` is an MMEngine registry with scope ``kdzoo``, a child of MMEngine's root ``MODELS``,
so that an mmdet / mmseg config can name ``type='kdzoo.MSDCRDLoss'`` and the lookup reaches it
through the root. ``LOSSES`` and ``CONNECTORS`` are that same object: a loss and a connector live
in one namespace. Inside a ``distill_cfg`` everything is built with :func:`build`, which always
resolves in the kdzoo scope first, so ``type='MSELoss'`` there is kdzoo's, whatever the runner's
default scope (an unscoped ``MSELoss`` elsewhere in an mmdet config builds mmdet's own).
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope, Registry

MODELS = Registry(
    'kdzoo', parent=MMENGINE_MODELS, scope='kdzoo',
    locations=['kdzoo.losses', 'kdzoo.connectors'])
LOSSES = MODELS
CONNECTORS = MODELS


def build(cfg):
    """Build a kdzoo loss or connector from ``cfg`` (``type`` with or without ``kdzoo.``).

    Raises ``KeyError`` naming the unknown type and the registered names.
    """
    cfg = dict(cfg)
    name = cfg.get('type')
    if isinstance(name, str) and MODELS.get(name) is None:
        known = ', '.join(sorted(MODELS.module_dict))
        raise KeyError(f"kdzoo: unknown loss/connector type {name!r}; registered: {known}")
    with DefaultScope.overwrite_default_scope('kdzoo'):
        return MODELS.build(cfg)
