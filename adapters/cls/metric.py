"""Top-k accuracy for the classification adapter (registered in MMEngine's ``METRICS``)."""
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy in percent, logged as ``cls/top1`` (``cls/top5`` with ``topk=(1, 5)``).

    Reads the ``dict(pred_score, gt_label)`` results of ``TimmClassifier`` / ``DistillClassifier``
    in ``predict`` mode.
    """

    default_prefix = 'cls'

    def __init__(self, topk=(1,), collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = (topk,) if isinstance(topk, int) else tuple(topk)

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            score, label = sample['pred_score'], int(sample['gt_label'])
            ranked = score.topk(min(max(self.topk), score.numel())).indices.tolist()
            self.results.append([label in ranked[:k] for k in self.topk])

    def compute_metrics(self, results):
        hits = torch.tensor(results, dtype=torch.float).view(-1, len(self.topk))
        return {f'top{k}': 100.0 * hits[:, i].mean().item() for i, k in enumerate(self.topk)}
