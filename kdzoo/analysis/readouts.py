"""Every stage readout of one model of a distillation pair, for ``tools/analyze.py``.

:func:`readouts` runs one model (the student, or the teacher on its own inputs) and returns
``{name: tensor}`` in depth order:

- ``'cls'`` (``TimmClassifier``): ``'stage1'`` .. ``'stage4'`` (as many as the model has) and
  ``'logits'``: the reserved readouts of :mod:`kdzoo.adapters.cls.model`, one forward;
- ``'mmseg'`` (``EncoderDecoder``): ``'stage<i>'``, the backbone's i-th output, and ``'logits'``,
  the decode head's class map (:func:`kdzoo.adapters.mmseg.distill.run_segmentor`);
- ``'mmdet'``: ``'stage<i>'``, the backbone's i-th output, and ``'fpn<i>'``, the neck's i-th level.

:func:`taps` says how a distill item reaches each readout: the reserved readout of that name
(classification, segmentation), ``'neck'`` for the FPN levels (the distiller pairs them level by
level), and for a detector's backbone stage the path of the module whose output is that very
tensor (``'backbone.layer2'`` of a ResNet), or ``None`` when no module returns it (mmdet's Swin
reshapes its tokens after its last module, so its stages have no module path).
"""
import torch

KINDS = ('stage', 'logits', 'fpn')


def kind_of(name):
    """``'stage'``, ``'logits'`` or ``'fpn'``: what the readout ``name`` is."""
    return next(kind for kind in KINDS if name.startswith(kind))


def cls_readouts(classifier, inputs):
    from kdzoo.adapters.cls.model import STAGES
    names = list(STAGES[:len(classifier.stage_indices)]) + ['logits']
    return classifier.readouts(inputs, names)


def seg_readouts(segmentor, inputs):
    from kdzoo.adapters.mmseg.distill import run_segmentor
    stages, _, logits = run_segmentor(segmentor, inputs)
    out = {f'stage{i}': stage for i, stage in enumerate(stages, 1)}
    out['logits'] = logits
    return out


def det_readouts(detector, inputs):
    stages = detector.backbone(inputs)
    out = {f'stage{i}': stage for i, stage in enumerate(stages, 1)}
    if detector.with_neck:
        out.update({f'fpn{i}': level for i, level in enumerate(detector.neck(stages), 1)})
    return out


READOUTS = {'cls': cls_readouts, 'mmseg': seg_readouts, 'mmdet': det_readouts}


def readouts(task, model, inputs):
    """``{name: tensor}`` of every stage readout of ``model`` (module doc) for ``inputs``, the
    batch as this model's own data preprocessor gives it."""
    return READOUTS[task](model, inputs)


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
    from kdzoo.adapters import import_task
    reserved = import_task(task).RESERVED
    out = {name: (name if name in reserved else 'neck' if kind_of(name) == 'fpn' else None)
           for name in names}
    if task == 'mmdet':
        with torch.no_grad():
            paths = output_paths(model.backbone, inputs[:1], 'backbone.')
        out.update({f'stage{i}': path for i, path in enumerate(paths, 1)})
    return out
