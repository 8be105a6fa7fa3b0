"""kdzoo's start-up hook, run by the ``kdzoo_startup.pth`` file that installing kdzoo puts in
site-packages (the wheel and the editable install of tools/install.sh alike; see setup.py).

Why: kdzoo's configs must parse with a plain ``mmengine.Config.fromfile`` (mmseg's and mmdet's
own tools, users' scripts) without ``import kdzoo`` first, and a config with ``distill_cfg`` must
never train the student alone through a framework's own entry point. So, in a process that
imports MMEngine:

- right after ``mmengine.config`` is imported: :func:`kdzoo.compat.register_fork_scopes`
  (``mmseg::`` / ``mmdet::`` bases resolve to the installed OpenMMLab forks);
- right after ``mmengine.runner`` is imported: :func:`kdzoo.guard.install` (``Runner.train``
  refuses a config with ``distill_cfg`` whose model is not a kdzoo distilling model).

At interpreter start it costs this small module only: it imports neither kdzoo nor MMEngine; it
puts one finder in front of ``sys.meta_path`` that answers only for those two module names, once
each (any other import costs it one dictionary lookup).
"""
import importlib
import sys

# module -> (kdzoo module, function) run once that module is imported
AFTER_IMPORT = {
    'mmengine.config': ('kdzoo.compat', 'register_fork_scopes'),
    'mmengine.runner': ('kdzoo.guard', 'install'),
}


class AfterImportFinder:
    """A ``sys.meta_path`` finder that finds nothing itself: for a watched module it asks the
    standard path finder for the spec and makes its loader run the kdzoo function after the
    module's own code."""

    def __init__(self, actions):
        self.actions = dict(actions)

    def find_spec(self, name, path=None, target=None):
        if name not in self.actions:
            return None
        action = self.actions.pop(name)
        from importlib.machinery import PathFinder
        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader.exec_module = _then(spec.loader.exec_module, *action)
        return spec


def _then(exec_module, module_name, function):
    def exec_module_then_act(module):
        exec_module(module)
        getattr(importlib.import_module(module_name), function)()
    return exec_module_then_act


def install():
    """Put the finder first on ``sys.meta_path`` for the modules not imported yet."""
    pending = {k: v for k, v in AFTER_IMPORT.items() if k not in sys.modules}
    if pending and not any(isinstance(f, AfterImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AfterImportFinder(pending))
