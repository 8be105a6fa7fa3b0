"""The detection task (:class:`kdzoo.tasks.TaskDescriptor` ``'det'``): mmdet detectors,
distilled by :class:`DistillDetector`."""
import inspect

import torch
from torch import nn

from kdzoo import tasks

from ..graph import Normalise
from .distill import RESERVED, DistillDetector, build_mmdet


def readouts(detector, inputs):
    """``stage<i>``, the backbone's i-th output, and ``fpn<i>``, the neck's i-th level."""
    stages = detector.backbone(inputs)
    out = {f'stage{i}': stage for i, stage in enumerate(stages, 1)}
    if detector.with_neck:
        out.update({f'fpn{i}': level for i, level in enumerate(detector.neck(stages), 1)})
    return out


def export_state_dict(state_dict):
    """The student detector's state dict, as it is: its keys are the plain mmdet model's
    (``backbone.*``, ``neck.*``, ``bbox_head.*``), so the export loads with
    ``mmdet.apis.init_detector(student_config, checkpoint)``."""
    return dict(state_dict)


class DetGraph(nn.Module):
    """``inputs`` -> the detector's raw dense-head outputs, one tensor per kind and level."""

    def __init__(self, model):
        super().__init__()
        self.model, self.normalise = model, Normalise(model.data_preprocessor)

    def forward(self, inputs):
        outputs = self.model._forward(self.normalise(inputs))
        return tuple(level for kind in outputs for level in kind)


def not_exportable(model, why):
    """The documented refusal (docs/deploy.md) of a detector ONNX export does not cover."""
    return ValueError(
        f'{type(model).__name__}: ONNX export covers detectors whose _forward returns the '
        'dense head\'s per-level outputs (one-stage detectors: RetinaNet, FCOS, ATSS, GFL, '
        f'...); {why}')


def output_names(model, outputs):
    """``<kind>_<level>`` names of the flattened head outputs; the kinds are the first arguments
    of the head's ``predict_by_feat`` (``cls_scores``, ``bbox_preds``, ``score_factors``)."""
    head = getattr(model, 'bbox_head', None) or getattr(model, 'rpn_head', None)
    params = list(inspect.signature(head.predict_by_feat).parameters) if head else []
    if not all(isinstance(kind, (list, tuple)) for kind in outputs) or len(params) < len(outputs):
        raise not_exportable(model, f'this one returns {type(outputs).__name__} of '
                                    f'{[type(kind).__name__ for kind in outputs]}')
    return [f'{params[k]}_{i}' for k, kind in enumerate(outputs) for i in range(len(kind))]


def onnx_graph(model, size):
    if hasattr(model, 'roi_head'):  # refused before any forward (two-stage: needs proposals)
        raise not_exportable(model, 'this one is a two-stage detector (rpn_head, then roi_head '
                                    'on its proposals), refused')
    graph = DetGraph(model)
    with torch.no_grad():
        outputs = model._forward(graph.normalise(torch.zeros(1, 3, *size)))
    return graph, output_names(model, outputs)


TASK = tasks.register(tasks.TaskDescriptor(
    name='det', distill_model=DistillDetector, metric='coco/bbox_mAP', metric_scale=100.0,
    reserved=RESERVED, build=build_mmdet, readouts=readouts, export_state_dict=export_state_dict,
    onnx_graph=onnx_graph, pads_to_divisor=True))
