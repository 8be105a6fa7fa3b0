"""kdzoo's start-up hook, run by the ``kdzoo_startup.pth`` file that installing kdzoo puts in
site-packages (the wheel and the editable install of tools/install.sh alike; see setup.py).

Why: kdzoo's configs must parse with a plain ``mmengine.Config.fromfile`` (mmseg's and mmdet's
own tools, users' scripts) without ``import kdzoo`` first, and a config with ``distill_cfg`` must
never train the student alone through a framework's own entry point. MMEngine has no plug-in
mechanism for either, so, in a process that imports MMEngine, this hook applies these of
:mod:`kdzoo.patches` (where each is explained):

- right after ``mmengine.config`` is imported: :func:`kdzoo.patches.register_config_scopes`
  (``kdzoo::`` bases are kdzoo's configs, ``mmseg::`` / ``mmdet::`` ones resolve to the
  installed OpenMMLab forks);
- right after ``mmengine.runner`` is imported: :func:`kdzoo.patches.patch_mmengine_runner`
  (``Runner.train`` refuses a config with ``distill_cfg`` whose model is not a kdzoo distilling
  model; MMEngine's checkpoint loading never falls back to unrestricted unpickling).

In an interpreter that never imports MMEngine it imports nothing (neither kdzoo nor MMEngine)
and changes no behaviour: it puts one finder in front of ``sys.meta_path`` that finds no module
itself and, for the two names above only, adds the patch to the module the other finders find.
Any other import costs it one dictionary lookup; once both modules are imported, it takes itself
off ``sys.meta_path``. Start-up cost: docs/deploy.md, "The start-up hook".
"""
import sys

# module -> function of kdzoo.patches run once that module is imported
AFTER_IMPORT = {
    'mmengine.config': 'register_config_scopes',
    'mmengine.runner': 'patch_mmengine_runner',
}


class AfterImportFinder:
    """A ``sys.meta_path`` finder that finds nothing itself: for a watched module it asks the
    finders after it for the spec and makes its loader run the patch after the module's own
    code."""

    def __init__(self, actions):
        self.actions = dict(actions)

    def find_spec(self, name, path=None, target=None):
        if name not in self.actions:
            return None
        patch = self.actions.pop(name)
        if not self.actions:
            sys.meta_path.remove(self)
        spec = self.spec_from_the_others(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader.exec_module = _then(spec.loader.exec_module, patch)
        return spec

    def spec_from_the_others(self, name, path, target):
        """The spec the import system would find without this finder."""
        finders = sys.meta_path
        start = finders.index(self) + 1 if self in finders else 0
        for finder in finders[start:]:
            find_spec = getattr(finder, 'find_spec', None)
            spec = find_spec(name, path, target) if find_spec else None
            if spec is not None:
                return spec
        return None


def _then(exec_module, patch):
    def exec_module_then_patch(module):
        exec_module(module)
        import kdzoo.patches
        getattr(kdzoo.patches, patch)()
    return exec_module_then_patch


def install():
    """Put the finder first on ``sys.meta_path`` for the modules not imported yet."""
    pending = {k: v for k, v in AFTER_IMPORT.items() if k not in sys.modules}
    if pending and not any(isinstance(f, AfterImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AfterImportFinder(pending))
