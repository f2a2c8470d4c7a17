"""Top-1 / top-5 classification error (percent) as an mmengine metric."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


def topk_errors(pred_topk: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """(N, k) predicted classes (best first) and (N,) labels -> {'top1_err': %, 'top5_err': %}.

    A k larger than the number of predictions kept (fewer classes than k) counts all of them, i.e. error 0.
    """
    if len(labels) == 0:
        return {f"top{k}_err": float("nan") for k in ks}
    hit = pred_topk == labels[:, None]
    return {f"top{k}_err": 100.0 * (1.0 - hit[:, :k].any(dim=1).float().mean().item()) for k in ks}


@METRICS.register_module(name="TopKError")
class TopKError(BaseMetric):
    """Accumulates CAMClassifier 'predict' outputs; compute -> {'top1_err', 'top5_err'} in percent."""

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            self.results.append((int(s["gt_label"]), torch.as_tensor(s["pred_topk"]).view(-1)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not results:
            return topk_errors(torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, dtype=torch.long))
        labels = torch.tensor([y for y, _ in results])
        preds = torch.stack([p for _, p in results])
        return topk_errors(preds, labels)
