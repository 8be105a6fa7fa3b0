"""The tasks kdzoo distils, one :class:`TaskDescriptor` each: what the rest of kdzoo needs to know
of a task, registered by its adapter (``kdzoo.adapters.cls``, ``.mmseg``, ``.mmdet``).

A task has one name everywhere (the ``task`` column of the experiment CSVs, the experiment
engine, messages): ``'cls'`` (timm classifiers), ``'seg'`` (mmseg), ``'det'`` (mmdet). A
config's task is read from its ``default_scope`` (:func:`of_config`: ``'mmseg'``, ``'mmdet'``;
any other scope is classification). The adapters register their descriptor when imported
(:func:`register`); :func:`get` imports the adapter of a known task the first time it is asked
for, so asking for a task never needs its framework before then. Modules above the adapters
(export, analysis, experiments, guard) look tasks up here instead of comparing task names.
"""
import importlib
from dataclasses import dataclass
from typing import Callable, Optional

import torch

# The stage readouts a task model offers: its backbone's outputs, shallow to deep.
STAGES = ('stage1', 'stage2', 'stage3', 'stage4')

DEFAULT = 'cls'
# name -> (the adapter module that registers it, the default_scope of its configs; the
# default task's configs have any other scope)
ADAPTERS = {
    'cls': ('kdzoo.adapters.cls', None),
    'seg': ('kdzoo.adapters.mmseg', 'mmseg'),
    'det': ('kdzoo.adapters.mmdet', 'mmdet'),
}
REGISTERED = {}


def identity(model):
    return model


@dataclass(frozen=True)
class TaskDescriptor:
    """What kdzoo knows of one task. Model arguments are the plain student model of the task (a
    ``TimmClassifier``, an mmseg ``EncoderDecoder``, an mmdet detector).

    - ``name``: the task's one name; ``distill_model``: the class of the distilling model
      :func:`kdzoo.adapters.wrap` builds around a student (``model_type``: its name in kdzoo's
      ``MODELS``);
    - ``metric``: the validation metric's key; ``metric_scale``: the factor to the tables' units
      (mmdet's mAP 0..1 -> points);
    - ``reserved``: the readout names an item taps by name (the adapter's ``RESERVED``);
    - ``build(model_cfg)``: the bare model of a config's ``model`` dict;
    - ``readouts(model, inputs)``: ``{name: tensor}`` of every stage readout, in depth order
      (``stage1``.., then ``logits`` or the FPN levels ``fpn1``..), of a batch as the model's own
      data preprocessor gives it;
    - ``logit_loss``: the loss suggested for a pair of logit readouts (``None``: the task has
      none);
    - ``export_state_dict(state_dict)``: a student's state dict keyed as the plain framework
      model expects it; ``plain_model(model)``: the module of ``model`` that holds those keys;
      ``exports_checkpoint``: the export is ``{'state_dict', 'meta'}`` (what the framework's
      ``init_model`` loads), not a bare state dict;
    - ``onnx_graph(model, size)``: ``(module, output names)`` of the ONNX graph, for an input of
      ``size`` ``(H, W)`` (docs/deploy.md); ``bgr``: the framework's loader reads images as BGR
      (mmcv), not RGB; ``pads_to_divisor``: the graph's input size is rounded up to the data
      preprocessor's ``pad_size_divisor`` (an FPN needs it).
    """
    name: str
    distill_model: type
    metric: str
    metric_scale: float
    reserved: tuple
    build: Callable
    readouts: Callable
    export_state_dict: Callable
    onnx_graph: Callable
    logit_loss: Optional[str] = None
    plain_model: Callable = identity
    exports_checkpoint: bool = True
    bgr: bool = True
    pads_to_divisor: bool = False

    @property
    def model_type(self):
        return f'kdzoo.{self.distill_model.__name__}'

    def stage_shapes(self, model_cfg, size=64):
        """``[(C, H, W)]`` of the stage readouts of the model ``model_cfg`` builds (eval mode), on
        one black ``size`` px image: what the experiment engine's loss recipes fit connectors
        to."""
        model = self.build(model_cfg).eval()
        with torch.no_grad():
            maps = self.readouts(model, torch.zeros(1, 3, size, size))
        return [tuple(x.shape[1:]) for name, x in maps.items() if name in STAGES]


def register(task):
    """Make the :class:`TaskDescriptor` ``task`` known by its name (an adapter does it when it is
    imported; a second registration of a name replaces the first)."""
    REGISTERED[task.name] = task
    return task


def names():
    """Every task name: the adapters' and any other registered one."""
    return sorted(set(ADAPTERS) | set(REGISTERED))


def import_adapter(name):
    """Import (and so register) the adapter of the task ``name``; a clear error when it cannot be
    imported (its framework is not installed)."""
    module, framework = ADAPTERS[name]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        mmcv = ', then onedl-mmcv compiled with its C++ ops (docs/deploy.md)' if framework else ''
        raise ModuleNotFoundError(
            f'the {name} adapter ({module}) cannot be imported: {err}. Install its frameworks: '
            f"the kdzoo wheel's extra, `pip install 'kdzoo-VERSION-py3-none-any.whl[{name}]'`"
            f"{mmcv}; in a checkout, the pinned stack with "
            '`bash tools/install.sh`.') from err


def get(name):
    """The :class:`TaskDescriptor` of the task ``name``, its adapter imported."""
    if name not in REGISTERED:
        if name not in ADAPTERS:
            raise ValueError(f'unknown task {name!r}; the tasks are {names()}')
        import_adapter(name)
    return REGISTERED[name]


def name_of(cfg):
    """The task name of a config (or dict) from its ``default_scope`` (module doc)."""
    scope = cfg.get('default_scope')
    return next((name for name, (_, own) in ADAPTERS.items() if own and own == scope), DEFAULT)


def of_config(cfg):
    """The :class:`TaskDescriptor` of a config (or dict), its adapter imported."""
    return get(name_of(cfg))


def is_distill_model(model):
    """Whether ``model`` is a registered task's distilling model (none is before its adapter is
    imported)."""
    return isinstance(model, tuple(task.distill_model for task in REGISTERED.values()))
