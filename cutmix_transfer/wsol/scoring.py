"""Scoring score maps: the box-worker pool beside the forward pass, and one accumulator that feeds every batch of
maps to the evaluators (``metrics.BoxEvaluator`` / ``MaskEvaluator``), keeps the per-image curves, merges the
counts across torchrun ranks and builds the per-image rows at the dataset-wide best thresholds.

The maps come from anywhere (a model, a saved cams.npz, wsolevaluation's .npy folder): the numbers depend on the
maps, the GT and the predictions only.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from time import perf_counter as _now
from typing import Any

import numpy as np
import torch

from ..distributed import all_reduce_counts
from .boxes import curves_for_batch
from .metrics import PAPER_IOU_THRESHOLD, BoxEvaluator, MaskEvaluator

logger = logging.getLogger(__name__)


def auto_box_workers(requested: int, device: torch.device, world: int) -> int:
    """--box-workers: `requested` when >= 0; -1 picks none on CPU (the forward pass already uses every core),
    else up to 4 processes, leaving one core per rank to the main process."""
    if requested >= 0:
        return requested
    if device.type == "cpu":
        return 0
    return max(0, min(4, (os.cpu_count() or 1) // max(1, world) - 1))


class BoxScorer:
    """Runs ``boxes.curves_for_batch`` per batch inline, or submits it to a process pool and collects results in
    submission order (at most 2 x workers batches in flight), so box extraction overlaps the next forward."""

    def __init__(self, thresholds: np.ndarray, workers: int) -> None:
        self.thresholds = thresholds
        self.pool = None
        if workers > 0:
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        self.max_pending = max(1, 2 * workers)
        self.pending: deque[tuple[Future, Any]] = deque()

    def submit(self, scoremaps: np.ndarray, gts: list[np.ndarray], payload: Any) -> list[tuple[Any, Any]]:
        """Queue one batch; returns the (curves, payload) pairs that are finished, oldest first."""
        if self.pool is None:
            return [(curves_for_batch(scoremaps, gts, self.thresholds, workers=1), payload)]
        self.pending.append((self.pool.submit(curves_for_batch, scoremaps, gts, self.thresholds, 1), payload))
        done = []
        while len(self.pending) > self.max_pending or (self.pending and self.pending[0][0].done()):
            fut, pay = self.pending.popleft()
            done.append((fut.result(), pay))
        return done

    def drain(self) -> list[tuple[Any, Any]]:
        """Wait for every batch still in flight; (curves, payload) pairs in submission order."""
        done = [(fut.result(), pay) for fut, pay in self.pending]
        self.pending.clear()
        return done

    def close(self) -> None:
        """Shut the pool down (pending work is cancelled)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class MapScorer:
    """Scores the maps of the `local` sample indices (this rank's shard) batch by batch.

    ``add`` takes the maps of some samples with their GT boxes (None: a dataset without boxes), masks, and the
    logits (None: no classification, e.g. saved maps); ``merge_ranks`` adds up the ranks' counts, ``compute`` gives
    the metrics.
    """

    def __init__(
        self,
        local: Sequence[int],
        iou_thresholds: Sequence[int],
        cam_curve_interval: float,
        fixed_threshold: float,
        box_workers: int,
        has_boxes: bool = True,
    ) -> None:
        self.local = list(local)
        self.pos_of = {g: p for p, g in enumerate(self.local)}
        self.has_boxes = has_boxes
        self.box_eval = BoxEvaluator(
            iou_thresholds, cam_curve_interval, fixed_threshold=fixed_threshold, fixed_iou=PAPER_IOU_THRESHOLD
        )
        self.mask_eval = MaskEvaluator(cam_curve_interval)
        n, n_thr = len(self.local), self.box_eval.thresholds.size
        self.v1_curves = np.zeros((n, n_thr), dtype=np.float64)
        self.v2_curves = np.zeros((n, n_thr), dtype=np.float64)
        self.fixed_iou = np.zeros(n, dtype=np.float64)
        self.preds = np.zeros(n, dtype=np.int64)
        self.confidence = np.zeros(n, dtype=np.float64)
        self.scored = np.zeros(n, dtype=bool)
        self.cls_counts = {"num_cls": np.zeros(1, np.int64), "num_top1": np.zeros(1, np.int64)}
        self.has_cls = True
        self.scorer = BoxScorer(self.box_eval.score_thresholds, box_workers) if has_boxes else None
        self.timing = {"boxes_s": 0.0, "masks_s": 0.0}

    def positions(self, indices: Sequence[int]) -> np.ndarray:
        """Local positions (rows of this rank's arrays) of global sample indices."""
        return np.array([self.pos_of[i] for i in indices], dtype=np.int64)

    def _consume(self, finished: list) -> None:
        for (v1, v2), (positions, correct) in finished:
            self.box_eval.accumulate_curves(v1[:, :-1], v2[:, :-1], v1[:, -1], correct)
            self.v1_curves[positions] = v1[:, :-1]
            self.v2_curves[positions] = v2[:, :-1]
            self.fixed_iou[positions] = v1[:, -1]

    def add(
        self,
        indices: Sequence[int],
        scoremaps: np.ndarray,
        labels: np.ndarray,
        gts: list[np.ndarray] | None,
        masks: np.ndarray,
        has_mask: np.ndarray,
        ignores: np.ndarray | None,
        logits: np.ndarray | None,
    ) -> None:
        """Score one batch: global `indices`, (B, 224, 224) maps, (B,) labels, GT boxes in the 224 frame (None: no
        boxes), (B, 224, 224) bool masks and ignore regions (None: none) with (B,) has_mask, (B, K) logits or None."""
        positions = self.positions(indices)
        correct = None
        if logits is None:
            self.has_cls = False
        else:
            probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
            pred = logits.argmax(axis=1)
            self.preds[positions] = pred
            self.confidence[positions] = probs[np.arange(len(pred)), pred]
            correct = pred == np.asarray(labels)
            self.cls_counts["num_cls"] += len(pred)
            self.cls_counts["num_top1"] += int(correct.sum())
        self.scored[positions] = True
        if self.has_boxes:
            t0 = _now()
            self._consume(self.scorer.submit(scoremaps, gts, (positions, correct)))
            self.timing["boxes_s"] += _now() - t0
        if has_mask.any():
            t0 = _now()
            self.mask_eval.accumulate(
                scoremaps[has_mask], masks[has_mask], None if ignores is None else ignores[has_mask]
            )
            self.timing["masks_s"] += _now() - t0

    def close(self) -> None:
        """Collect the batches still in flight and stop the box workers."""
        if self.scorer is not None:
            try:
                t0 = _now()
                self._consume(self.scorer.drain())
                self.timing["boxes_s"] += _now() - t0
            finally:
                self.scorer.close()

    def merge_ranks(self, device: torch.device) -> None:
        """All-reduce the integer counts of every rank (the result equals one process scoring everything)."""
        self.box_eval.load_state_dict(all_reduce_counts(self.box_eval.state_dict(), device))
        self.mask_eval.load_state_dict(all_reduce_counts(self.mask_eval.state_dict(), device))
        self.cls_counts = all_reduce_counts(self.cls_counts, device)

    def num_images(self) -> int:
        """Images scored by every rank together (after merge_ranks)."""
        return self.box_eval.num_images if self.has_boxes else self.mask_eval.num_images

    def top1_cls(self) -> float | None:
        """Top-1 classification accuracy in percent over every scored image (None without logits)."""
        n = int(self.cls_counts["num_cls"][0])
        return None if not self.has_cls or n == 0 else int(self.cls_counts["num_top1"][0]) * 100.0 / n

    def compute(self) -> tuple[dict | None, dict | None]:
        """(box metrics or None without boxes, mask metrics or None without masks)."""
        box = self.box_eval.compute() if self.has_boxes else None
        mask = self.mask_eval.compute() if self.mask_eval.num_images else None
        return box, mask

    def best_thresholds(self) -> tuple[int, int]:
        """Indices of the dataset-wide best V1 and V2 CAM thresholds at IoU 50 (first on ties)."""
        k50 = self.box_eval.iou_thresholds.index(50)
        return int(np.argmax(self.box_eval.num_correct_v1[k50])), int(np.argmax(self.box_eval.num_correct_v2[k50]))

    def rows(self, samples: Sequence, names: list[str] | None) -> list[dict[str, Any]]:
        """Per-image rows of this rank (dataset order) at the dataset-wide best thresholds; fields that need a
        classification or boxes are '' without them."""
        best_v1, best_v2 = self.best_thresholds() if self.has_boxes else (0, 0)
        rows = []
        for p in np.flatnonzero(self.scored):
            s = samples[self.local[p]]
            label = int(s.label)
            row: dict[str, Any] = {
                "index": self.local[p],
                "image_id": s.image_id,
                "label": label,
                "class_name": names[label] if names and label < len(names) else "",
            }
            if self.has_cls:
                pred = int(self.preds[p])
                row.update(
                    predicted=pred,
                    predicted_name=names[pred] if names and pred < len(names) else "",
                    correct=int(pred == label),
                    confidence=float(self.confidence[p]),
                )
            else:
                row.update(predicted="", predicted_name="", correct="", confidence="")
            if self.has_boxes:
                iou = float(self.v1_curves[p, best_v1])
                row.update(
                    iou=iou,
                    hit=int(iou >= 50 / 100),
                    iou_fixed=float(self.fixed_iou[p]),
                    iou_v2=float(self.v2_curves[p, best_v2]),
                    iou_curves=(self.v1_curves[p].copy(), self.v2_curves[p].copy()),
                )  # per_image_ious.npz
            else:
                row.update(iou="", hit="", iou_fixed="", iou_v2="")
            rows.append(row)
        return rows
