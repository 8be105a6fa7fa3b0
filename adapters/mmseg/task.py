"""The segmentation task (:class:`kdzoo.tasks.TaskDescriptor` ``'seg'``): mmseg
``EncoderDecoder`` students, distilled by :class:`DistillSegmentor`."""
from torch import nn

from kdzoo import tasks

from ..graph import Normalise
from .distill import (
    RESERVED,
    DistillSegmentor,
    build_mmseg,
    export_state_dict,
    run_segmentor,
)


def readouts(segmentor, inputs):
    """``stage<i>``, the backbone's i-th output, and ``logits``, the decode head's class map."""
    stages, _, logits = run_segmentor(segmentor, inputs)
    out = {f'stage{i}': stage for i, stage in enumerate(stages, 1)}
    out['logits'] = logits
    return out


class SegGraph(nn.Module):
    """``inputs`` -> ``seg_logits`` ``(B, K, H, W)``: ``EncoderDecoder.encode_decode``."""

    def __init__(self, model, size):
        super().__init__()
        self.model, self.normalise = model, Normalise(model.data_preprocessor)
        self.metas = [dict(img_shape=tuple(size), ori_shape=tuple(size), pad_shape=tuple(size))]

    def forward(self, inputs):
        return self.model.encode_decode(self.normalise(inputs), self.metas)


def onnx_graph(model, size):
    return SegGraph(model, size), ['seg_logits']


TASK = tasks.register(tasks.TaskDescriptor(
    name='seg', distill_model=DistillSegmentor, metric='mIoU', metric_scale=1.0,
    reserved=RESERVED, build=build_mmseg, readouts=readouts, export_state_dict=export_state_dict,
    onnx_graph=onnx_graph, logit_loss='MSDCRDLoss'))
