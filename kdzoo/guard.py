"""No silent student-only training: a config with ``distill_cfg`` distils, or stops at once.

Why: ``distill_cfg`` is read by kdzoo's entry points (``tools/train.py`` and the tools built on
:func:`kdzoo.runner.build_runner`, which wrap the config's model with
:func:`kdzoo.adapters.wrap`). A framework's own entry point (mmdet's or mmseg's
``tools/train.py``, ``mim train``, ``Runner.from_cfg(cfg).train()`` in a script) does not know the
key: it builds ``model`` as written and trains the student alone, while the config says it is
distilled. :func:`install` wraps MMEngine's ``Runner.train`` with :func:`check_runner`, which
raises before the first iteration when the runner's config has ``distill_cfg`` and its model is
not a kdzoo distilling model, naming the two ways that do distil (docs/entry_points.md).

Installed when this module is imported: ``kdzoo.adapters`` imports it (a kdzoo config's
``custom_imports`` does that), and in an installed kdzoo the start-up hook (``kdzoo_startup.py``)
imports it as soon as ``mmengine.runner`` is imported, so a stock mmdet / mmseg config with
``distill_cfg`` added, which imports nothing of kdzoo, is caught too.
Testing or validating such a config (``runner.test()``, ``runner.val()``) is not refused.
"""
import functools


class DistillCfgIgnoredError(RuntimeError):
    """A run would train the student alone although its config has ``distill_cfg``."""


def message(cfg, model_name):
    """What went wrong and the two fixes, written for the config's task."""
    from kdzoo.adapters import TASKS, task_of
    task = task_of(cfg)
    module, model_type = TASKS[task]
    preprocessor = ('' if task == 'cls' else
                    ',\n                 data_preprocessor={{_base_.model.data_preprocessor}}')
    return (
        f'this config has distill_cfg, but the model MMEngine built is {model_name}, not a kdzoo '
        'distilling model: training would ignore distill_cfg and train the student alone. '
        'Either train with kdzoo\'s entry point, `python tools/train.py CONFIG` (it wraps the '
        'model), or write the model in the explicit form, in a config whose _base_ is this one:\n'
        f"    model = dict(_delete_=True, type='{model_type}',\n"
        "                 student={{_base_.model}}, distill_cfg={{_base_.distill_cfg}}"
        f"{preprocessor})\n"
        f"    custom_imports = dict(imports=['{module}'], allow_failed_imports=False)\n"
        '(docs/entry_points.md). To train the student alone, remove distill_cfg from the config.')


def check_runner(runner):
    """Raise :class:`DistillCfgIgnoredError` when ``runner``'s config has ``distill_cfg`` and its
    model (unwrapped from DDP) is not a :class:`kdzoo.adapters.base.DistillModel`."""
    if 'distill_cfg' not in runner.cfg:
        return
    from kdzoo.adapters.base import DistillModel
    from kdzoo.wrappers import unwrap
    model = unwrap(runner.model)
    if not isinstance(model, DistillModel):
        raise DistillCfgIgnoredError(message(runner.cfg, type(model).__name__))


def install():
    """Wrap ``mmengine.runner.Runner.train`` with :func:`check_runner` (once per process)."""
    from mmengine.runner import Runner
    if getattr(Runner.train, 'kdzoo_guarded', False):
        return
    train = Runner.train

    @functools.wraps(train)
    def guarded_train(self):
        check_runner(self)
        return train(self)

    guarded_train.kdzoo_guarded = True
    Runner.train = guarded_train


install()
