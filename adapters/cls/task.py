"""The classification task (:class:`kdzoo.tasks.TaskDescriptor` ``'cls'``): timm classifiers in
:class:`TimmClassifier`, distilled by :class:`DistillClassifier`."""
from torch import nn

from kdzoo import tasks
from kdzoo.registry import build

from .distill import DistillClassifier
from .model import RESERVED, export_state_dict


def readouts(classifier, inputs):
    """``stage1`` .. (as many as the classifier has) and ``logits``: its reserved readouts, one
    forward."""
    names = list(tasks.STAGES[:len(classifier.stage_indices)]) + ['logits']
    return classifier.readouts(inputs, names)


class ClsGraph(nn.Module):
    """``inputs`` -> ``logits`` ``(B, K)``: :class:`TimmClassifier` resizes and normalises."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model(inputs, mode='tensor')


def onnx_graph(model, size):
    return ClsGraph(model), ['logits']


def plain_model(classifier):
    """The timm model inside the classifier: the export's keys are its own."""
    return classifier.model


TASK = tasks.register(tasks.TaskDescriptor(
    name='cls', distill_model=DistillClassifier, metric='cls/top1', metric_scale=1.0,
    reserved=RESERVED, build=build, readouts=readouts, export_state_dict=export_state_dict,
    onnx_graph=onnx_graph, logit_loss='KDLoss', plain_model=plain_model,
    exports_checkpoint=False, bgr=False))
