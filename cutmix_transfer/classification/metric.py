"""Top-1 / top-5 classification error (percent) as an mmengine metric, with the per-image rows behind it."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

logger = logging.getLogger(__name__)
PER_IMAGE_COLUMNS = ("image_id", "index", "label", "pred", "correct_top1", "correct_top5")


def topk_errors(pred_topk: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """(N, k) predicted classes (best first) and (N,) labels -> {'top1_err': %, 'top5_err': %}.

    A k larger than the number of predictions kept (fewer classes than k) counts all of them, i.e. error 0.
    """
    if len(labels) == 0:
        return {f"top{k}_err": float("nan") for k in ks}
    hit = pred_topk == labels[:, None]
    return {f"top{k}_err": 100.0 * (1.0 - hit[:, :k].any(dim=1).float().mean().item()) for k in ks}


def _sample_indices(data_batch: Any, n: int) -> list[int | None]:
    """The batch's dataset indices ('sample_idx', put in every item by the classification datasets), else Nones."""
    idx = data_batch.get("sample_idx") if isinstance(data_batch, dict) else None
    if idx is None:
        return [None] * n
    return [int(i) for i in (idx.tolist() if isinstance(idx, torch.Tensor) else idx)]


@METRICS.register_module(name="TopKError")
class TopKError(BaseMetric):
    """Accumulates CAMClassifier 'predict' outputs; compute -> {'top1_err', 'top5_err'} in percent.

    Each result is keyed by its sample's dataset index (the batch's 'sample_idx'): a sample seen twice (a
    distributed sampler's padding) counts once. After a computation `per_image` holds its rows, one per index in
    index order ({'index', 'label', 'pred', 'correct_top1', 'correct_top5'}), on the main process; None when the
    batches carried no indices. train.py writes them beside the record (per_image.csv) for the report's intervals.
    """

    def __init__(self, collect_device: str = "cpu", prefix: str | None = None, collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.per_image: list[dict[str, int]] | None = None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for i, s in zip(_sample_indices(data_batch, len(data_samples)), data_samples):
            self.results.append((i, int(s["gt_label"]), torch.as_tensor(s["pred_topk"]).view(-1)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        seen: set[int] = set()
        kept = []  # the first result of each index, in arrival order (so the numbers are today's without padding)
        for i, y, p in results:
            if i is None or i not in seen:
                kept.append((i, y, p))
                seen.add(i)
        if len(kept) < len(results):
            logger.info("TopKError: %d repeated samples (sampler padding) counted once", len(results) - len(kept))
        self.per_image = None
        if not kept:
            return topk_errors(torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, dtype=torch.long))
        labels = torch.tensor([y for _, y, _ in kept])
        preds = torch.stack([p for _, _, p in kept])
        if all(i is not None for i, _, _ in kept):
            hit = preds == labels[:, None]
            rows = [
                {"index": i, "label": y, "pred": int(p[0]), "correct_top1": int(h[0]), "correct_top5": int(h[:5].any())}
                for (i, y, p), h in zip(kept, hit)
            ]
            self.per_image = sorted(rows, key=lambda r: r["index"])
        return topk_errors(preds, labels)


def per_image_csv(rows: Sequence[dict[str, int]], image_ids: Sequence[str]) -> str:
    """TopKError's per-image rows as per_image.csv text; `image_ids[index]` names each row's image."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(PER_IMAGE_COLUMNS)
    out.writerows([image_ids[r["index"]], *(r[k] for k in PER_IMAGE_COLUMNS[1:])] for r in rows)
    return buf.getvalue()
