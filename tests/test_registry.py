"""The one kdzoo registry: scope, parent, locations, and scoped lookups from mmdet configs."""
import pytest
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

from kdzoo import registry
from kdzoo.losses import KDLoss, MSDCRDLoss, MSELoss

ALL_LOSSES = ['KDLoss', 'DKDLoss', 'DISTLoss', 'OFALoss', 'DFRALoss', 'SDDLoss', 'MSDCRDLoss',
              'LFCCLoss', 'MSELoss', 'ATLoss', 'RKDLoss', 'CWDLoss', 'PKDLoss']


def test_one_registry_child_of_mmengine_models():
    assert registry.LOSSES is registry.CONNECTORS is registry.MODELS
    assert registry.MODELS.scope == 'kdzoo' and registry.MODELS.parent is ROOT_MODELS
    assert set(registry.MODELS._locations) >= {'kdzoo.losses', 'kdzoo.connectors'}
    assert ROOT_MODELS._search_child('kdzoo') is registry.MODELS


def test_runner_registries_import_without_mmengine_warnings(monkeypatch):
    """The kdzoo-scope children of MMEngine's registries import from their location: with the
    kdzoo scope in MODULE2PACKAGE (the kdzoo:: configs), a registry without a location tried
    ``kdzoo.utils`` on first use and logged "kdzoo is not installed" (seen in every run)."""
    import mmengine.logging
    logged = []
    monkeypatch.setattr(mmengine.logging, 'print_log', lambda msg, *a, **k: logged.append(msg))
    for child in registry.RUNNER_REGISTRIES.values():
        monkeypatch.setattr(child, '_imported', False)
        child.import_from_location()
    assert not [msg for msg in logged if 'kdzoo.utils' in msg or 'not installed' in msg], logged


@pytest.mark.parametrize('name', ALL_LOSSES)
def test_every_loss_builds_with_defaults_scoped_or_not(name):
    for type_name in (name, f'kdzoo.{name}'):
        loss = registry.build(dict(type=type_name))
        assert type(loss).__name__ == name and not list(loss.parameters())


def test_distill_build_ignores_the_runner_default_scope():
    """Inside a distill_cfg `MSELoss` is kdzoo's even when the runner's scope is mmdet."""
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS as MMDET_MODELS  # registers mmdet's own MSELoss
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert type(registry.build(dict(type='MSELoss'))) is MSELoss
        assert type(MMDET_MODELS.build(dict(type='kdzoo.MSDCRDLoss'))) is MSDCRDLoss
        assert type(MMDET_MODELS.build(dict(type='MSELoss'))) is not MSELoss  # mmdet's own


def test_unknown_type_lists_registered_names():
    with pytest.raises(KeyError, match="unknown type 'KDLos'.*KDLoss"):
        registry.build(dict(type='KDLos'))
    assert isinstance(registry.build(dict(type=KDLoss)), KDLoss)
