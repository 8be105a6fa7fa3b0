"""The one kdzoo registry.

``MODELS`` is an MMEngine registry with scope ``kdzoo``, a child of MMEngine's root ``MODELS``,
so that an mmdet / mmseg config can name ``type='kdzoo.MSDCRDLoss'`` and the lookup reaches it
through the root. ``LOSSES`` and ``CONNECTORS`` are that same object: a loss and a connector live
in one namespace. Inside a ``distill_cfg`` everything is built with :func:`build`, which always
resolves in the kdzoo scope first, so ``type='MSELoss'`` there is kdzoo's, whatever the runner's
default scope (an unscoped ``MSELoss`` elsewhere in an mmdet config builds mmdet's own).
"""
from mmengine import registry as mm_registry
from mmengine.registry import DefaultScope, Registry

MODELS = Registry(
    'kdzoo', parent=mm_registry.MODELS, scope='kdzoo',
    locations=['kdzoo.losses', 'kdzoo.connectors'])
LOSSES = MODELS
CONNECTORS = MODELS

# Empty kdzoo-scope children of MMEngine's other root registries: a config with
# ``default_scope = 'kdzoo'`` then resolves hooks, loops, datasets, metrics, ... in MMEngine's own
# registries (through the parent) without a "failed to search registry with scope" warning each.
# Their location is this module, which holds nothing more to import: a registry without one, of a
# scope that MMEngine maps to a package (``kdzoo`` is, for the ``kdzoo::`` configs:
# patches.register_config_scopes), falls back to importing ``kdzoo.utils`` on first use and warns
# "kdzoo is not installed" when there is none.
RUNNER_REGISTRIES = {
    name: Registry(f'kdzoo {name.lower()}', parent=getattr(mm_registry, name), scope='kdzoo',
                   locations=[__name__])
    for name in ('DATASETS', 'DATA_SAMPLERS', 'EVALUATOR', 'FUNCTIONS', 'HOOKS', 'LOG_PROCESSORS',
                 'LOOPS', 'METRICS', 'MODEL_WRAPPERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
                 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'RUNNERS', 'RUNNER_CONSTRUCTORS',
                 'TASK_UTILS', 'TRANSFORMS', 'VISBACKENDS', 'VISUALIZERS', 'WEIGHT_INITIALIZERS')}


def build(cfg):
    """Build a kdzoo loss or connector from ``cfg`` (``type`` with or without ``kdzoo.``).

    Raises ``KeyError`` naming the unknown type and the registered names.
    """
    cfg = dict(cfg)
    name = cfg.get('type')
    if isinstance(name, str) and MODELS.get(name) is None:
        known = ', '.join(sorted(MODELS.module_dict))
        raise KeyError(f"kdzoo: unknown type {name!r} (a loss, connector or model); registered: "
                       f'{known}')
    with DefaultScope.overwrite_default_scope('kdzoo'):
        return MODELS.build(cfg)
