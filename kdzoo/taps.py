"""Feature taps: record the output of any submodule, addressed by its dotted path.

A tap keeps a module's output as it is (a tuple/list output, e.g. an FPN's levels, stays a
tuple). A module called several times in one forward (a shared detection head called once per
level) records a list, one entry per call, in call order. Recording happens only between
:meth:`Taps.start` and :meth:`Taps.stop` (or inside ``with taps.recording():``), so validation or
teacher-check forwards keep nothing.
"""
import difflib
from contextlib import contextmanager


def closest_paths(path, valid, n=5):
    """The ``n`` valid module paths closest to ``path`` (for error messages)."""
    matches = difflib.get_close_matches(path, valid, n=n, cutoff=0.5)
    if not matches:
        prefix = path.rsplit('.', 1)[0]
        matches = [v for v in valid if v.startswith(prefix)][:n]
    return matches


def check_paths(model, paths, side='model', reserved=()):
    """Raise ``ValueError`` for any path in ``paths`` that is neither a submodule of ``model`` nor
    a reserved readout name, listing the closest valid paths."""
    valid = [name for name, _ in model.named_modules() if name]
    known = set(valid) | set(reserved)
    for path in paths:
        if path not in known:
            hints = closest_paths(path, list(reserved) + valid)
            top = sorted({v.split('.')[0] for v in valid})
            raise ValueError(
                f'{side} tap {path!r} is not a module of {type(model).__name__}. '
                f'Closest valid paths: {hints or "none"}. '
                + (f'Reserved readouts: {sorted(reserved)}. ' if reserved else '')
                + f'Top-level modules: {top}.')


class Taps:
    """Forward hooks on ``model`` recording the outputs of the modules at ``paths``."""

    def __init__(self, model, paths, side='model', reserved=()):
        paths = list(dict.fromkeys(paths))
        check_paths(model, paths, side, reserved)
        self.side = side
        self.records = {path: [] for path in paths}
        self.active = False
        for path in paths:
            model.get_submodule(path).register_forward_hook(self._hook(path))

    def _hook(self, path):
        def record(module, args, output):
            if self.active:
                self.records[path].append(output)
        return record

    def start(self):
        """Clear previous records and record the coming forwards."""
        self.clear()
        self.active = True

    def stop(self):
        self.active = False

    @contextmanager
    def recording(self):
        """Record inside the block; on leaving it stop and drop the records."""
        self.start()
        try:
            yield self
        finally:
            self.stop()
            self.clear()

    def clear(self):
        for calls in self.records.values():
            calls.clear()

    def get(self, path):
        """The output recorded at ``path``: one call -> its output; several -> a list in call
        order."""
        calls = self.records[path]
        if not calls:
            raise RuntimeError(
                f'{self.side} tap {path!r} recorded nothing: the module was not called in this '
                'forward (is it used by the model\'s forward at all?)')
        return calls[0] if len(calls) == 1 else list(calls)
