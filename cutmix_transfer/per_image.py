"""Each tool's per-image results, read back as a statistic over images, so the report can resample a record's
metric (docs/report_statistics.md): WSOL per_image.csv and per-image IoUs, detection per-image detections,
captioning per-image scores, robustness per-image rows."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .bootstrap import Statistic, VOCMapStatistic, max_over_thresholds_statistic, mean_statistic
from .results import PER_IMAGE_DETECTIONS, PER_IMAGE_IOUS

PerImage = tuple[list[str], Statistic]  # image ids (sorted) and the metric as a statistic over them


def _read_csv(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _by_id(ids: list[str], values: np.ndarray) -> tuple[list[str], np.ndarray]:
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    return [ids[i] for i in order], values[order]


def _wsol_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    if metric in ("top1_cls", "top1_loc", "gt_known_loc"):
        rows = _read_csv(folder / "per_image.csv")
        if not rows:
            return None
        try:  # empty cells: no boxes (mask-only data) or no classification (saved maps)
            correct = np.array([float(r["correct"]) for r in rows])
            fixed_hit = np.array([float(r["iou_fixed"]) >= 0.5 for r in rows], dtype=np.float64)
        except (KeyError, ValueError):
            return None
        x = {"top1_cls": correct, "gt_known_loc": fixed_hit, "top1_loc": correct * fixed_hit}[metric]
        ids, x = _by_id([r["image_id"] for r in rows], 100.0 * x)
        return ids, mean_statistic(x)
    if metric in ("maxboxacc", "maxboxacc_v2") and (folder / PER_IMAGE_IOUS).is_file():
        with np.load(folder / PER_IMAGE_IOUS, allow_pickle=False) as z:
            ids, v1, v2 = [str(i) for i in z["image_ids"]], z["iou_v1"], z["iou_v2"]
        if metric == "maxboxacc":
            hits = v1 >= 0.5
        else:
            ious = np.asarray((rec.get("protocol") or {}).get("iou_thresholds", [30, 50, 70]), dtype=np.float64)
            hits = v2[:, None, :] >= ious[None, :, None] / 100.0
        order = sorted(range(len(ids)), key=lambda i: ids[i])
        return [ids[i] for i in order], max_over_thresholds_statistic(hits[order])
    return None


def _detection_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    path = folder / PER_IMAGE_DETECTIONS
    if metric != "mAP" or not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        ids = [str(i) for i in z["image_ids"]]
        k = int(z["num_classes"])
        n = len(ids)
        dets = [[np.zeros((0, 5), np.float32) for _ in range(k)] for _ in range(n)]
        for i, c, box in zip(z["det_image"], z["det_label"], z["det_boxes"]):
            dets[int(i)][int(c)] = np.vstack([dets[int(i)][int(c)], box[None].astype(np.float32)])
        gts = []
        for i in range(n):
            sel, ign = z["gt_image"] == i, z["gt_ignore"].astype(bool)
            gts.append(
                {
                    "bboxes": z["gt_boxes"][sel & ~ign],
                    "labels": z["gt_label"][sel & ~ign],
                    "bboxes_ignore": z["gt_boxes"][sel & ign],
                    "labels_ignore": z["gt_label"][sel & ign],
                }
            )
        mode, iou = str(z["eval_mode"]), float(z["iou_thr"])
    order = sorted(range(n), key=lambda i: ids[i])
    stat = VOCMapStatistic([dets[i] for i in order], [gts[i] for i in order], iou_thr=iou, eval_mode=mode)
    return [ids[i] for i in order], stat


# captioning metrics whose corpus value is the mean of the per-image scores (pycocoevalcap): CIDEr-D (idf of the
# full test set), ROUGE-L. BLEU (corpus n-gram counts) and METEOR (corpus alignment statistics) are not.
CAPTION_MEAN_METRICS = ("CIDEr", "ROUGE-L")


def _captioning_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    path = Path(rec.get("captions") or folder / "captions.json")
    path = path if path.is_file() else folder / "captions.json"
    if metric not in CAPTION_MEAN_METRICS or not path.is_file():
        return None
    rows = json.loads(path.read_text())
    if not rows or metric not in rows[0]:
        return None
    ids, x = _by_id([str(r["image_id"]) for r in rows], 100.0 * np.array([float(r[metric]) for r in rows]))
    return ids, mean_statistic(x)


def _robustness_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    rows = _read_csv(folder / "per_image.csv")
    col = {"clean_top1": "clean_correct"}.get(metric) or (
        metric.replace("fgsm_top1_", "fgsm_correct_") if metric.startswith("fgsm_top1_") else None
    )
    if not rows or col is None or col not in rows[0]:
        return None
    ids, x = _by_id([r["image_id"] for r in rows], 100.0 * np.array([float(r[col]) for r in rows]))
    return ids, mean_statistic(x)


PER_IMAGE_READERS = {
    "wsol": _wsol_per_image,
    "detection": _detection_per_image,
    "captioning": _captioning_per_image,
    "robustness": _robustness_per_image,
}


def per_image_statistic(record_path: str | os.PathLike, rec: dict[str, Any], metric: str) -> PerImage | None:
    """The record's metric as a statistic over its per-image results (files beside results.json), or None."""
    reader = PER_IMAGE_READERS.get(str(rec.get("kind")))
    return reader(Path(record_path).parent, rec, metric) if reader else None
