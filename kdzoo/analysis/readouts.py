"""Every stage readout of one model of a distillation pair, for ``kdzoo analyze``.

:func:`readouts` runs one model (the student, or the teacher on its own inputs) and returns
``{name: tensor}`` in depth order, as its task's descriptor reads them
(:attr:`kdzoo.tasks.TaskDescriptor.readouts`):

- ``'cls'`` (``TimmClassifier``): ``'stage1'`` .. ``'stage4'`` (as many as the model has) and
  ``'logits'``: the reserved readouts of :mod:`kdzoo.adapters.cls.model`, one forward;
- ``'seg'`` (``EncoderDecoder``): ``'stage<i>'``, the backbone's i-th output, and ``'logits'``,
  the decode head's class map (:func:`kdzoo.adapters.mmseg.distill.run_segmentor`);
- ``'det'``: ``'stage<i>'``, the backbone's i-th output, and ``'fpn<i>'``, the neck's i-th level.

:func:`taps` says how a distill item reaches each readout: the reserved readout of that name
(classification, segmentation), ``'neck'`` for the FPN levels (the distiller pairs them level by
level), and for a backbone stage that is not a reserved readout (a detector's) the path of the
module whose output is that very tensor (``'backbone.layer2'`` of a ResNet), or ``None`` when no
module returns it (mmdet's Swin reshapes its tokens after its last module, so its stages have no
module path).
"""
import torch

from kdzoo import tasks

KINDS = ('stage', 'logits', 'fpn')


def kind_of(name):
    """``'stage'``, ``'logits'`` or ``'fpn'``: what the readout ``name`` is."""
    return next(kind for kind in KINDS if name.startswith(kind))


def readouts(task, model, inputs):
    """``{name: tensor}`` of every stage readout of ``model`` (module doc) for ``inputs``, the
    batch as this model's own data preprocessor gives it; ``task``: the task's name."""
    return tasks.get(task).readouts(model, inputs)


def output_paths(module, inputs, prefix):
    """For each tensor of the sequence ``module(inputs)`` returns, ``prefix`` + the shortest path
    of a submodule whose output is that very tensor, or ``None`` when there is none."""
    records = []
    handles = [sub.register_forward_hook(
        lambda _, __, output, name=name: records.append((name, output)))
        for name, sub in module.named_modules() if name]
    try:
        outputs = module(inputs)
    finally:
        for handle in handles:
            handle.remove()
    paths = []
    for output in outputs:
        names = [name for name, recorded in records if recorded is output]
        paths.append(prefix + min(names, key=len) if names else None)
    return paths


def taps(task, model, inputs, names):
    """``{name: tap}`` for the readouts ``names`` of ``model``: the distill-item tap that reads
    each (module doc), or ``None`` when no tap reads it."""
    reserved = tasks.get(task).reserved
    out = {name: (name if name in reserved else 'neck' if kind_of(name) == 'fpn' else None)
           for name in names}
    if any(kind_of(name) == 'stage' and name not in reserved for name in names):
        with torch.no_grad():
            paths = output_paths(model.backbone, inputs[:1], 'backbone.')
        out.update({f'stage{i}': path for i, path in enumerate(paths, 1)})
    return out
