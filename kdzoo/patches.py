"""Every change kdzoo makes to third-party behaviour, in one place: what each fixes, the upstream
version it was written against, where it is applied, and the test that fails without it.

- :func:`register_config_scopes`: ``mmengine.config.utils.MODULE2PACKAGE`` (onedl-mmengine
  0.10.12). Applied by ``import kdzoo`` and by the start-up hook once ``mmengine.config`` is
  imported. Tests: tests/test_patches.py, tests/test_install.py.
- :func:`refuse_hub_installs`: ``mmengine.utils.install_package`` as ``mmengine.hub.get_config``
  calls it (onedl-mmengine 0.10.12). Applied with :func:`register_config_scopes`.
  Test: tests/test_patches.py.
- :func:`guard_runner_train`: ``mmengine.runner.Runner.train`` (onedl-mmengine 0.10.12). Applied
  by ``import kdzoo.adapters`` and by the start-up hook once ``mmengine.runner`` is imported.
  Tests: tests/test_patches.py, tests/test_entry_points.py.
- :func:`harden_mmengine_loading`: ``mmengine.runner.checkpoint._safe_torch_load``
  (onedl-mmengine 0.10.12 with torch >= 2.6). Applied by the start-up hook once
  ``mmengine.runner`` is imported (:func:`patch_mmengine_runner`), so in every process before any
  checkpoint can be read: every tool (train, test, export, analyze, compare, plug-and-play, the
  quick start) and every MMEngine load (``load_from``, ``--resume``, hooks).
  :func:`kdzoo.runner.build_runner` applies it too, for a process without the hook.
  Tests: tests/test_patches.py, tests/test_checkpoint.py, tests/tools/test_pickle_bomb.py.
- :func:`scoped_collate_fn`: ``mmengine.runner.Runner.build_dataloader`` (onedl-mmengine
  0.10.12). Applied with :func:`harden_mmengine_loading` (:func:`patch_mmengine_runner`, and by
  :func:`kdzoo.runner.build_runner`). Tests: tests/test_patches.py, tests/test_readme.py.
- :func:`unformatted_config_dumps`: ``yapf.yapflib.yapf_api.FormatCode`` as MMEngine's
  ``Config.pretty_text`` calls it (onedl-mmengine 0.10.12, yapf 0.43). Applied in a ``with``
  block around the experiments' runs. Test: tests/test_patches.py.

tests/test_patches.py also checks that each upstream behaviour is still the one patched: when an
upstream release fixes it, that test fails and says the patch can go.

Nothing happens on importing this module: each patch is a function, applied where the list says.
The start-up hook (``kdzoo_startup.py``, docs/deploy.md) applies all but the last in a process
that imports MMEngine without kdzoo, so a plain ``Config.fromfile`` reads kdzoo's ``mmseg::``
configs, a stock config with ``distill_cfg`` cannot train the student alone
(docs/entry_points.md), no checkpoint MMEngine loads is unpickled and a config on a ``kdzoo::``
base builds its dataloaders. This module imports only
the standard library at its top: the hook imports it as soon as ``mmengine.config`` is, and
``import kdzoo`` imports it. The hook itself is the one piece of import machinery outside this
module: it wraps the loader of the two watched MMEngine modules (standard-library machinery, no
third-party object is changed) and has to be a top-level module that imports nothing of kdzoo,
since ``import kdzoo`` imports MMEngine.
"""
import functools
import sys
from contextlib import contextmanager
from importlib import metadata

# -------------------------------------------------------------------------------- config scopes
# MMEngine reads a ``<scope>::<path>`` config name only for the scopes of ``MODULE2PACKAGE``
# (``mmengine does not support to load kdzoo config`` otherwise), each mapped to a distribution,
# and finds the file in ``<that distribution's package>/.mim/configs/<path>``.
# The forks keep the import names (mmseg, mmdet, ...) but not the distribution names: 'mmseg::...'
# looks up `mmsegmentation`, finds nothing and stops ("mmsegmentation is not installed");
# MMEngine's hub then pip-installs the dead upstream package over the fork's mmseg directory (seen
# with the forks, 2026-11).
FORKS = {
    'mmseg': 'onedl-mmsegmentation',
    'mmdet': 'onedl-mmdetection',
    'mmpretrain': 'onedl-mmpretrain',
}
# kdzoo's own configs (kdzoo/configs.py: kdzoo/.mim/configs is the repository's configs/)
KDZOO_SCOPE = {'kdzoo': 'kdzoo'}


def _installed(distribution):
    try:
        metadata.distribution(distribution)
        return True
    except metadata.PackageNotFoundError:
        return False


def register_config_scopes():
    """Register the ``kdzoo::`` config scope (``kdzoo::quickstart/msdcrd.py``: kdzoo's
    ``configs/quickstart/msdcrd.py``), point the ``mmseg::`` / ``mmdet::`` / ``mmpretrain::``
    scopes at the forks' distributions unless the upstream distribution is installed (when
    neither is installed, the core install, MMEngine's error names the fork to install), and
    :func:`refuse_hub_installs`. All in ``MODULE2PACKAGE``.

    Returns the mapping applied. Idempotent.
    """
    from mmengine.config import utils
    refuse_hub_installs()
    applied = {}
    for module, package in KDZOO_SCOPE.items():
        if utils.MODULE2PACKAGE.get(module) != package:
            utils.MODULE2PACKAGE[module] = applied[module] = package
    for module, fork in FORKS.items():
        upstream = utils.MODULE2PACKAGE.get(module)
        if upstream != fork and not _installed(upstream):
            utils.MODULE2PACKAGE[module] = fork
            applied[module] = fork
    return applied


def install_package(package):
    """MMEngine's ``install_package``, without the install: a missing distribution is an error."""
    from mmengine.utils import is_installed
    if not is_installed(package):
        raise ModuleNotFoundError(
            f'{package} is not installed (MMEngine would pip-install it; kdzoo does not let it: '
            'mmseg and mmdet need onedl-mmcv compiled with its C++ ops). Install it with pip '
            "(mmseg / mmdet: the kdzoo wheel's extra, `pip install 'kdzoo-VERSION-py3-none-any.whl"
            "[seg]'` / `[det]`, then onedl-mmcv compiled with its ops: docs/deploy.md); in a "
            'checkout, the full stack with '
            '`bash tools/install.sh`.')


def refuse_hub_installs():
    """``mmengine.hub.get_config('mmseg::...')`` (kdzoo's teacher loading uses it) runs
    ``python -m pip install`` for a scope whose distribution is missing: a stray install into the
    user's environment, of a package that needs onedl-mmcv compiled with its C++ ops, which pip
    cannot build. It raises :func:`install_package`'s error instead. Idempotent."""
    from mmengine import utils
    from mmengine.utils import package_utils
    package_utils.install_package = utils.install_package = install_package
    if 'mmengine.hub.hub' in sys.modules:  # imported before: it holds its own reference
        sys.modules['mmengine.hub.hub'].install_package = install_package


# ------------------------------------------------------------------------------ Runner.train guard
def guard_runner_train():
    """Make MMEngine's ``Runner.train`` call :func:`kdzoo.guard.check_runner` first: a config with
    ``distill_cfg`` whose model is not a kdzoo distilling model stops before the first iteration
    instead of training the student alone (docs/entry_points.md). Idempotent.

    ``kdzoo.guard`` is imported when a guarded ``train()`` runs, not here: the hook applies this
    patch as ``mmengine.runner`` is imported, and the check needs kdzoo's adapters, which import
    MMEngine's runner themselves.
    """
    from mmengine.runner import Runner
    if getattr(Runner.train, 'kdzoo_guarded', False):
        return
    train = Runner.train

    @functools.wraps(train)
    def guarded_train(self):
        from kdzoo.guard import check_runner
        check_runner(self)
        return train(self)

    guarded_train.kdzoo_guarded = True
    Runner.train = guarded_train


# -------------------------------------------------------------------------- checkpoint loading
def harden_mmengine_loading():
    """MMEngine's ``--resume`` / ``load_from`` loading (``_safe_torch_load``) tries
    ``weights_only=True`` and, when that refuses a pickle, falls back to unrestricted unpickling
    with a warning. It loads with :func:`kdzoo.checkpoint.weights_only_torch_load` instead:
    ``weights_only=True`` with kdzoo's allow-list, an error naming the file otherwise. Idempotent.
    """
    from mmengine.runner import checkpoint as mm_checkpoint

    from kdzoo.checkpoint import weights_only_torch_load
    mm_checkpoint._safe_torch_load = weights_only_torch_load


# ------------------------------------------------------------------------ dataloader collate_fn
def scoped_collate_fn():
    """MMEngine's ``Runner.build_dataloader`` calls a dict ``collate_fn``'s (and
    ``worker_init_fn``'s) function with every key of the dict but ``type``. A config whose
    ``_base_`` is another package's (``_base_ = 'kdzoo::quickstart/student.py'``,
    ``mmpretrain::...``) gets ``_scope_`` added by MMEngine to every dict with a ``type``, those
    included, and the first batch stops with ``default_collate() got an unexpected keyword
    argument '_scope_'``. The key is dropped before the call: the function is then looked up by
    its name in MMEngine's ``FUNCTIONS`` under the run's default scope, as in a config without a
    scoped base. Idempotent."""
    from mmengine.runner import Runner
    build_dataloader = Runner.build_dataloader
    if getattr(build_dataloader, 'kdzoo_scoped_collate', False):
        return

    @functools.wraps(build_dataloader)
    def without_collate_scope(dataloader, *args, **kwargs):
        if isinstance(dataloader, dict):
            dataloader = dict(dataloader, **{
                name: {key: value for key, value in dataloader[name].items() if key != '_scope_'}
                for name in ('collate_fn', 'worker_init_fn')
                if isinstance(dataloader.get(name), dict)})
        return build_dataloader(dataloader, *args, **kwargs)

    without_collate_scope.kdzoo_scoped_collate = True
    Runner.build_dataloader = staticmethod(without_collate_scope)


def patch_mmengine_runner():
    """What the start-up hook applies once ``mmengine.runner`` is imported:
    :func:`guard_runner_train`, :func:`harden_mmengine_loading` and :func:`scoped_collate_fn`.
    Idempotent."""
    guard_runner_train()
    harden_mmengine_loading()
    scoped_collate_fn()


# -------------------------------------------------------------------------------- config dumps
def _unformatted(text, **kwargs):
    return text, False


@contextmanager
def unformatted_config_dumps():
    """Inside the block, MMEngine's ``Config.pretty_text`` (the config each runner logs and dumps
    into its work dir) skips its yapf formatting, which costs seconds per mmseg / mmdet config and
    is paid in every run of an experiment; the dumps are the same text, unformatted. Restored on
    exit. MMEngine's own switch, ``Config(format_python_code=False)``, is not passed on by
    ``Config.fromfile`` to the configs it reads, so it cannot reach a runner's config."""
    from yapf.yapflib import yapf_api
    format_code = yapf_api.FormatCode
    yapf_api.FormatCode = _unformatted
    try:
        yield
    finally:
        yapf_api.FormatCode = format_code
