"""kdzoo/patches.py: each patch of third-party behaviour does what it says, and the upstream
behaviour it patches is still there (when an upstream release fixes it, the "upstream" test of
that patch fails: the patch can go)."""
import importlib.util
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.config import utils as config_utils
from mmengine.utils import package_utils

from kdzoo import patches
from kdzoo.checkpoint import CheckpointError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEG_BASE = 'mmseg::_base_/models/upernet_swin.py'


# --- register_config_scopes --------------------------------------------------------------------
def scope_path(monkeypatch, upstream):
    """Where MMEngine finds ``SEG_BASE`` when ``MODULE2PACKAGE`` maps ``mmseg`` to ``upstream``."""
    monkeypatch.setitem(config_utils.MODULE2PACKAGE, 'mmseg', upstream)
    return Config._get_cfg_path(SEG_BASE, 'config.py')[0]


def test_upstream_mmseg_scope_looks_for_the_upstream_distribution(monkeypatch):
    pytest.importorskip('mmseg', reason='the mmseg:: scope needs the full install')
    with pytest.raises(ModuleNotFoundError, match='^mmsegmentation is not installed'):
        scope_path(monkeypatch, 'mmsegmentation')


def test_fork_scopes_find_the_forks_configs(monkeypatch):
    mmseg = pytest.importorskip('mmseg', reason='the mmseg:: scope needs the full install')
    monkeypatch.setitem(config_utils.MODULE2PACKAGE, 'mmseg', 'mmsegmentation')
    assert patches.register_config_scopes() == {'mmseg': 'onedl-mmsegmentation'}
    path = Config._get_cfg_path(SEG_BASE, 'config.py')[0]
    assert path.startswith(mmseg.__path__[0]) and path.endswith('upernet_swin.py')
    assert patches.register_config_scopes() == {}  # idempotent


def test_upstream_mmengine_refuses_the_kdzoo_scope(monkeypatch):
    monkeypatch.delitem(config_utils.MODULE2PACKAGE, 'kdzoo')
    with pytest.raises(AssertionError, match='^mmengine does not support to load kdzoo config'):
        Config._get_cfg_path('kdzoo::quickstart/msdcrd.py', 'config.py')


def test_kdzoo_scope_names_the_repository_configs(monkeypatch, tmp_path):
    """``kdzoo::quickstart/msdcrd.py`` is configs/quickstart/msdcrd.py (through kdzoo/.mim), as a
    config name and as the ``_base_`` of a user's config."""
    monkeypatch.delitem(config_utils.MODULE2PACKAGE, 'kdzoo')
    assert patches.register_config_scopes() == {'kdzoo': 'kdzoo'}
    path, scope = Config._get_cfg_path('kdzoo::quickstart/msdcrd.py', 'config.py')
    assert scope == 'kdzoo'
    assert os.path.samefile(path, os.path.join(REPO, 'configs', 'quickstart', 'msdcrd.py'))
    user = tmp_path / 'mine.py'
    user.write_text("_base_ = 'kdzoo::quickstart/msdcrd.py'\nmax_iters = 7\n")
    cfg = Config.fromfile(str(user))
    assert cfg.max_iters == 7 and cfg.distill_cfg.losses[0].loss.type == 'MSDCRDLoss'
    assert os.path.samefile(cfg.distill_cfg.teacher.config,
                            os.path.join(REPO, 'configs', 'quickstart', 'teacher.py'))
    assert patches.register_config_scopes() == {}  # idempotent


# --- refuse_hub_installs ------------------------------------------------------------------------
def upstream_module(name):
    """A fresh copy of the module ``name`` as its source defines it, untouched by kdzoo."""
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_upstream_hub_pip_installs_a_missing_scope(monkeypatch):
    import mmengine.hub.hub
    upstream = upstream_module('mmengine.utils.package_utils')
    calls = []
    upstream.call_command = calls.append
    monkeypatch.setattr(mmengine.hub.hub, 'install_package', upstream.install_package)
    with pytest.raises(Exception):
        mmengine.hub.get_config('mmocr::textdet/dbnet/dbnet_r18.py')
    assert calls == [['python', '-m', 'pip', 'install', 'mmocr']]


def test_hub_installs_are_refused_with_the_install_that_works(monkeypatch):
    import mmengine.hub.hub
    calls = []
    monkeypatch.setattr(package_utils, 'call_command', calls.append)
    monkeypatch.setattr(mmengine.hub.hub, 'install_package', mmengine.hub.hub.install_package)
    patches.refuse_hub_installs()
    with pytest.raises(ModuleNotFoundError, match=r"^mmocr is not installed .* Install it with "
                       r"pip \(mmseg / mmdet: the kdzoo wheel's extra, `pip install "
                       r"'kdzoo-VERSION-py3-none-any.whl\[seg\]'` .*; in a checkout, "
                       r'the full stack with `bash tools/install.sh`\.$'):
        mmengine.hub.get_config('mmocr::textdet/dbnet/dbnet_r18.py')
    assert calls == []


# --- guard_runner_train -------------------------------------------------------------------------
def runner_with_distill_cfg():
    """What ``Runner.train`` reads first: a config with ``distill_cfg`` and a plain model."""
    cfg = Config(dict(model=dict(type='TimmClassifier'), distill_cfg=dict(losses=[])))
    return SimpleNamespace(cfg=cfg, model=torch.nn.Linear(2, 2))


def test_upstream_runner_train_ignores_distill_cfg(monkeypatch):
    from mmengine.runner import Runner
    upstream = getattr(Runner.train, '__wrapped__', Runner.train)
    with pytest.raises(AssertionError, match='train_step'):  # it goes on to train the model
        upstream(runner_with_distill_cfg())


def test_guarded_runner_train_stops_a_config_with_distill_cfg(monkeypatch):
    from mmengine.runner import Runner

    from kdzoo.guard import DistillCfgIgnoredError
    upstream = getattr(Runner.train, '__wrapped__', Runner.train)
    monkeypatch.setattr(Runner, 'train', upstream)
    patches.guard_runner_train()
    patches.guard_runner_train()  # idempotent: wrapped once
    assert Runner.train.__wrapped__ is upstream
    with pytest.raises(DistillCfgIgnoredError, match='the model MMEngine built is Linear'):
        Runner.train(runner_with_distill_cfg())


# --- scoped_collate_fn ---------------------------------------------------------------------------
def loader_with_scoped_collate():
    """A dataloader config as MMEngine reads it from a ``kdzoo::`` base: ``_scope_`` in every dict
    with a ``type``, ``collate_fn`` included."""
    return dict(batch_size=2, num_workers=0,
                dataset=[{'x': torch.zeros(1)}, {'x': torch.ones(1)}],
                sampler=dict(type='DefaultSampler', shuffle=False, _scope_='mmengine'),
                collate_fn=dict(type='default_collate', _scope_='kdzoo'))


def test_upstream_build_dataloader_passes_scope_to_the_collate_function():
    from mmengine.runner import Runner
    upstream = getattr(Runner.build_dataloader, '__wrapped__', Runner.build_dataloader)
    loader = upstream(loader_with_scoped_collate())
    with pytest.raises(TypeError, match="unexpected keyword argument '_scope_'"):
        loader.collate_fn([{'x': torch.zeros(1)}])


def test_scoped_collate_fn_drops_the_scope_before_the_call(monkeypatch):
    from mmengine.runner import Runner
    upstream = getattr(Runner.build_dataloader, '__wrapped__', Runner.build_dataloader)
    monkeypatch.setattr(Runner, 'build_dataloader', staticmethod(upstream))
    patches.scoped_collate_fn()
    patches.scoped_collate_fn()  # idempotent: wrapped once
    assert Runner.build_dataloader.__wrapped__ is upstream
    from mmengine.dataset import worker_init_fn
    config = dict(loader_with_scoped_collate(), worker_init_fn=dict(
        type=worker_init_fn, num_workers=1, rank=0, seed=0, _scope_='kdzoo'))
    loader = Runner.build_dataloader(config)
    batch = loader.collate_fn([{'x': torch.zeros(1)}, {'x': torch.ones(1)}])
    assert torch.equal(batch['x'], torch.tensor([[0.0], [1.0]]))
    loader.worker_init_fn(0)  # upstream: unexpected keyword argument '_scope_'
    assert config['collate_fn'] == dict(type='default_collate', _scope_='kdzoo')  # not changed


# --- harden_mmengine_loading --------------------------------------------------------------------
class Unsafe:
    """Unpickles by calling ``os.getpid``: code run on load, refused by ``weights_only``."""

    def __reduce__(self):
        return os.getpid, ()


def test_upstream_mmengine_loading_falls_back_to_unpickling(tmp_path):
    torch.save({'state_dict': {}, 'x': Unsafe()}, tmp_path / 'unsafe.pth')
    # without kdzoo's start-up hook, which hardens the loader as mmengine.runner is imported
    code = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if "
            "type(f).__name__ != 'AfterImportFinder']; import mmengine.runner.checkpoint as c; "
            f"print(c._safe_torch_load({str(tmp_path / 'unsafe.pth')!r}, map_location='cpu'))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd='/')
    assert out.returncode == 0, out.stderr[-3000:]
    assert "'x': " in out.stdout and 'Falling back to weights_only=False' in out.stdout + out.stderr


def test_hardened_mmengine_loading_refuses_what_weights_only_refuses(tmp_path, monkeypatch):
    from mmengine.runner import checkpoint as mm_checkpoint
    monkeypatch.setattr(mm_checkpoint, '_safe_torch_load', mm_checkpoint._safe_torch_load)
    torch.save({'state_dict': {}, 'x': Unsafe()}, tmp_path / 'unsafe.pth')
    patches.harden_mmengine_loading()
    with pytest.raises(CheckpointError, match='refused by torch.load\\(weights_only=True\\)'):
        mm_checkpoint._load_checkpoint(str(tmp_path / 'unsafe.pth'), map_location='cpu')
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'plain.pth')
    loaded = mm_checkpoint._load_checkpoint(str(tmp_path / 'plain.pth'), map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))


def test_a_process_importing_mmengine_runner_is_hardened(tmp_path):
    """The start-up hook hardens MMEngine's loader as ``mmengine.runner`` is imported: a plain
    MMEngine process (no ``import kdzoo``) refuses the pickle instead of running it."""
    marker = tmp_path / 'ran'
    torch.save({'state_dict': {}, 'x': Bomb(str(marker))}, tmp_path / 'bomb.pth')
    code = ("import mmengine.runner.checkpoint as c; "
            f"c._load_checkpoint({str(tmp_path / 'bomb.pth')!r}, map_location='cpu')")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd='/')
    assert out.returncode == 1 and not marker.exists()
    assert 'refused by torch.load(weights_only=True)' in out.stderr.splitlines()[-1]


class Bomb:
    """Unpickles by creating the file ``marker``: proof that pickled code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, 'w')


# --- unformatted_config_dumps -------------------------------------------------------------------
def test_config_dumps_are_unformatted_inside_the_block_only():
    cfg = Config(dict(model=dict(type='Student', widths=[16, 32, 64, 128], name='s' * 80)))
    unformatted = Config(cfg.to_dict(), format_python_code=False).pretty_text  # MMEngine's own
    formatted = cfg.pretty_text
    assert formatted != unformatted  # upstream: yapf formats every dump
    with patches.unformatted_config_dumps():
        assert cfg.pretty_text == unformatted
    assert cfg.pretty_text == formatted
