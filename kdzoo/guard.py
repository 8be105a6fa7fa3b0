"""No silent student-only training: a config with ``distill_cfg`` distils, or stops at once.

Why: ``distill_cfg`` is read by kdzoo's entry points (``kdzoo train`` and the commands built on
:func:`kdzoo.runner.build_runner`, which wrap the config's model with
:func:`kdzoo.adapters.wrap`). A framework's own entry point (mmdet's or mmseg's
``tools/train.py``, ``mim train``, ``Runner.from_cfg(cfg).train()`` in a script) does not know the
key: it builds ``model`` as written and trains the student alone, while the config says it is
distilled. :func:`kdzoo.patches.guard_runner_train` makes MMEngine's ``Runner.train`` call
:func:`check_runner` first, which raises before the first iteration when the runner's config has
``distill_cfg`` and its model is not a kdzoo distilling model, naming the two ways that do distil
(docs/entry_points.md).

That patch is applied by ``import kdzoo.adapters`` (a kdzoo config's ``custom_imports`` does
that), and in an installed kdzoo by the start-up hook (``kdzoo_startup.py``) as soon as
``mmengine.runner`` is imported, so a stock mmdet / mmseg config with ``distill_cfg`` added, which
imports nothing of kdzoo, is caught too.
Testing or validating such a config (``runner.test()``, ``runner.val()``) is not refused.
"""

from kdzoo import tasks
from kdzoo.wrappers import unwrap


class DistillCfgIgnoredError(RuntimeError):
    """A run would train the student alone although its config has ``distill_cfg``."""


def message(cfg, model_name):
    """What went wrong and the two fixes, written for the config's task; the explicit model form
    is what :func:`kdzoo.adapters.wrap` builds (the student's data preprocessor, when it has one,
    is the distilling model's)."""
    task = tasks.of_config(cfg)
    module = tasks.ADAPTERS[task.name][0]
    preprocessor = (',\n                 data_preprocessor={{_base_.model.data_preprocessor}}'
                    if 'data_preprocessor' in cfg.model else '')
    return (
        f'this config has distill_cfg, but the model MMEngine built is {model_name}, not a kdzoo '
        'distilling model: training would ignore distill_cfg and train the student alone. '
        'Either train with kdzoo\'s entry point, `kdzoo train CONFIG` (it wraps the '
        'model), or write the model in the explicit form, in a config whose _base_ is this one:\n'
        f"    model = dict(_delete_=True, type='{task.model_type}',\n"
        "                 student={{_base_.model}}, distill_cfg={{_base_.distill_cfg}}"
        f"{preprocessor})\n"
        f"    custom_imports = dict(imports=['{module}'], allow_failed_imports=False)\n"
        '(docs/entry_points.md). To train the student alone, remove distill_cfg from the config.')


def check_runner(runner):
    """Raise :class:`DistillCfgIgnoredError` when ``runner``'s config has ``distill_cfg`` and its
    model (unwrapped from DDP) is not a registered task's distilling model
    (:func:`kdzoo.tasks.is_distill_model`)."""
    if 'distill_cfg' not in runner.cfg:
        return
    model = unwrap(runner.model)
    if not tasks.is_distill_model(model):
        raise DistillCfgIgnoredError(message(runner.cfg, type(model).__name__))
