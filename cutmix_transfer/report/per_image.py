"""Each tool's per-image results, read back as a statistic over images, so the report can resample a record's
metric (docs/report_statistics.md): WSOL per_image.csv and per-image IoUs, detection per-image detections,
captioning per-image scores and BLEU / METEOR statistics, robustness per-image rows, OOD per-image scores."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..caption_stats import STATS_KEYS as CAPTION_STATS_KEYS
from ..caption_stats import corpus_statistic as caption_corpus_statistic
from ..ood.data import IN_DISTRIBUTION_KEY
from ..ood.metrics import ROC_METRICS, MeanOverSetsStatistic
from ..results import PER_IMAGE_CSV, PER_IMAGE_DETECTIONS, PER_IMAGE_IOUS
from .bootstrap import Statistic, VOCMapStatistic, max_over_thresholds_statistic, mean_statistic
from .calibration import ece_per_image
from .corruption import corruption_per_image

PerImage = tuple[list[str], Statistic]  # image ids (sorted) and the metric as a statistic over them


def _read_csv(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _id_order(ids: list[str]) -> tuple[list[str], list[int]]:
    """The ids sorted (the report pairs two records' images by them) and the order that sorts them."""
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    return [ids[i] for i in order], order


def _mean_by_id(ids: list[str], per_image: np.ndarray) -> PerImage:
    """A metric that is the mean of a per-image value (percent), over the images sorted by id."""
    ids, order = _id_order(ids)
    return ids, mean_statistic(per_image[order])


def _wsol_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    if metric in ("top1_cls", "top1_loc", "gt_known_loc"):
        rows = _read_csv(folder / PER_IMAGE_CSV)
        if not rows:
            return None
        try:  # empty cells: no boxes (mask-only data) or no classification (saved maps)
            correct = np.array([float(r["correct"]) for r in rows])
            fixed_hit = np.array([float(r["iou_fixed"]) >= 0.5 for r in rows], dtype=np.float64)
        except (KeyError, ValueError):
            return None
        x = {"top1_cls": correct, "gt_known_loc": fixed_hit, "top1_loc": correct * fixed_hit}[metric]
        return _mean_by_id([r["image_id"] for r in rows], 100.0 * x)
    if metric in ("maxboxacc", "maxboxacc_v2") and (folder / PER_IMAGE_IOUS).is_file():
        with np.load(folder / PER_IMAGE_IOUS, allow_pickle=False) as z:
            ids, v1, v2 = [str(i) for i in z["image_ids"]], z["iou_v1"], z["iou_v2"]
        if metric == "maxboxacc":
            hits = v1 >= 0.5
        else:
            ious = np.asarray((rec.get("protocol") or {}).get("iou_thresholds", [30, 50, 70]), dtype=np.float64)
            hits = v2[:, None, :] >= ious[None, :, None] / 100.0
        ids, order = _id_order(ids)
        return ids, max_over_thresholds_statistic(hits[order])
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
    ids, order = _id_order(ids)
    return ids, VOCMapStatistic([dets[i] for i in order], [gts[i] for i in order], iou_thr=iou, eval_mode=mode)


# captioning metrics whose corpus value is the mean of the per-image scores (pycocoevalcap): CIDEr-D (idf of the
# full test set), ROUGE-L. BLEU-1..4 (corpus n-gram counts) and METEOR (summed alignment statistics) are not: they
# are recomputed from the per-image statistics in captions.json (caption_stats.STATS_KEYS).
CAPTION_MEAN_METRICS = ("CIDEr", "ROUGE-L")


def _captioning_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    path = Path(rec.get("captions") or folder / "captions.json")
    path = path if path.is_file() else folder / "captions.json"
    key = metric if metric in CAPTION_MEAN_METRICS else CAPTION_STATS_KEYS.get(metric)
    if key is None or not path.is_file():
        return None
    rows = json.loads(path.read_text())
    if not rows or key not in rows[0]:
        return None  # e.g. captions.json written before the statistics were kept, or METEOR not run
    image_ids = [str(r["image_id"]) for r in rows]
    if metric in CAPTION_MEAN_METRICS:
        return _mean_by_id(image_ids, 100.0 * np.array([float(r[metric]) for r in rows]))
    ids, order = _id_order(image_ids)
    return ids, caption_corpus_statistic(metric, np.array([r[key] for r in rows], dtype=np.float64)[order])


def _robustness_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    rows = _read_csv(folder / PER_IMAGE_CSV)
    col = {"clean_top1": "clean_correct"}.get(metric) or (
        metric.replace("fgsm_top1_", "fgsm_correct_") if metric.startswith("fgsm_top1_") else None
    )
    if not rows or col is None or col not in rows[0]:
        return None
    return _mean_by_id([r["image_id"] for r in rows], 100.0 * np.array([float(r[col]) for r in rows]))


def _classification_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    """top1_err / top5_err: the mean of 100 * (1 - correct_top<k>) over the per_image.csv rows (train_cls's or
    test_cls's); ece: calibration.ECEStatistic over test_cls's (confidence, correct_top1) rows."""
    if metric == "ece":
        return ece_per_image(folder)
    if metric not in ("top1_err", "top5_err"):
        return None
    rows = _read_csv(folder / PER_IMAGE_CSV)
    if not rows:
        return None
    try:
        errors = np.array([100.0 * (1.0 - float(r[f"correct_top{metric[3]}"])) for r in rows])
    except (KeyError, ValueError):  # not train_cls's file
        return None
    return _mean_by_id([r["image_id"] for r in rows], errors)


def _ood_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    """OOD ROC metrics (mean over sets) from per_image/<in-distribution>.csv and per_image/<set>.csv: the images
    are all evaluated ones, ids '<set>/<image id>' ('in_distribution/<index>'), resampled within each set."""
    sets = [str(s) for s in rec.get("ood_sets") or []]
    if metric not in ROC_METRICS or not sets:
        return None
    if (rec.get("protocol") or {}).get("metrics_as", "exact") != "exact":  # the reference codes: no resampling
        return None
    tables = [_read_csv(folder / "per_image" / f"{name}.csv") for name in (IN_DISTRIBUTION_KEY, *sets)]
    if not all(tables):
        return None
    try:
        ids = [f"{IN_DISTRIBUTION_KEY}/{r['index']}" for r in tables[0]]
        ids += [f"{name}/{r['image_id']}" for name, rows in zip(sets, tables[1:]) for r in rows]
        scores = np.array([float(r["score"]) for rows in tables for r in rows])
    except (KeyError, ValueError):  # not ood_eval's files
        return None
    groups = np.repeat(np.arange(len(tables)), [len(rows) for rows in tables])  # 0 = in-distribution
    ids, order = _id_order(ids)
    return ids, MeanOverSetsStatistic(scores[order], groups[order], metric)


PER_IMAGE_READERS = {
    "classification": _classification_per_image,
    "wsol": _wsol_per_image,
    "detection": _detection_per_image,
    "captioning": _captioning_per_image,
    "robustness": _robustness_per_image,
    "ood": _ood_per_image,
    "corruption": corruption_per_image,  # report/corruption.py: resampled by clean image
}


def per_image_statistic(record_path: str | os.PathLike, rec: dict[str, Any], metric: str) -> PerImage | None:
    """The record's metric as a statistic over its per-image results (files beside results.json), or None."""
    reader = PER_IMAGE_READERS.get(str(rec.get("kind")))
    return reader(Path(record_path).parent, rec, metric) if reader else None
