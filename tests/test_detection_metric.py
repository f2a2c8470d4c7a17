"""VOC mAP as the detection records report it: mmdet's VOCMetric (+ per-class AP) against an independent
implementation of the VOC devkit's AP (11-point VOC07 and 'area'), hand-computed cases, and ground truth fed
back as predictions (100)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")

from cutmix_transfer.datasets.demo import VOC_CLASSES  # noqa: E402
from cutmix_transfer.detection import VOCMetricPerClass  # noqa: E402

CLASSES = VOC_CLASSES  # mmdet 3.x VOCDataset order


def _metric(eval_mode: str = "11points") -> VOCMetricPerClass:
    m = VOCMetricPerClass(metric="mAP", eval_mode=eval_mode)
    m.dataset_meta = dict(classes=CLASSES, dataset_type="VOC2007")
    return m


def _sample(gt_boxes, gt_labels, ign_boxes, ign_labels, pred_boxes, pred_scores, pred_labels) -> dict:
    f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32).reshape(-1, 4))  # noqa: E731
    i = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64).reshape(-1))  # noqa: E731
    return {
        "gt_instances": {"bboxes": f(gt_boxes), "labels": i(gt_labels)},
        "ignored_instances": {"bboxes": f(ign_boxes), "labels": i(ign_labels)},
        "pred_instances": {
            "bboxes": f(pred_boxes),
            "scores": torch.as_tensor(np.asarray(pred_scores, np.float32)),
            "labels": i(pred_labels),
        },
    }


def _run(metric: VOCMetricPerClass, samples: list[dict]) -> dict:
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


# ---- an independent VOC devkit AP (voc_eval semantics: legacy +1 box sizes, difficult boxes ignored) ----
def _iou_legacy(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix0 = np.maximum(boxes[:, 0], box[0])
    iy0 = np.maximum(boxes[:, 1], box[1])
    ix1 = np.minimum(boxes[:, 2], box[2])
    iy1 = np.minimum(boxes[:, 3], box[3])
    inter = np.maximum(ix1 - ix0 + 1, 0) * np.maximum(iy1 - iy0 + 1, 0)
    area = lambda b: (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def _reference_ap(images: list[dict], cls: int, mode: str) -> float | None:
    gts = {}
    npos = 0
    dets = []
    for k, im in enumerate(images):
        sel = im["gt_labels"] == cls
        isel = im["ign_labels"] == cls
        boxes = np.concatenate([im["gt_boxes"][sel], im["ign_boxes"][isel]])
        difficult = np.concatenate([np.zeros(sel.sum(), bool), np.ones(isel.sum(), bool)])
        gts[k] = (boxes, difficult, np.zeros(len(boxes), bool))
        npos += int(sel.sum())
        psel = im["pred_labels"] == cls
        dets += [(s, k, b) for s, b in zip(im["pred_scores"][psel], im["pred_boxes"][psel])]
    if npos == 0:
        return None
    dets.sort(key=lambda d: -d[0])
    tp = np.zeros(len(dets))
    fp = np.zeros(len(dets))
    for d, (_, k, box) in enumerate(dets):
        boxes, difficult, seen = gts[k]
        if len(boxes) == 0:
            fp[d] = 1
            continue
        ious = _iou_legacy(box, boxes)
        j = int(np.argmax(ious))
        if ious[j] >= 0.5:
            if difficult[j]:
                continue
            if not seen[j]:
                tp[d] = 1
                seen[j] = True
            else:
                fp[d] = 1
        else:
            fp[d] = 1
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    rec = ctp / npos
    prec = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    if mode == "11points":
        levels = np.arange(0, 1.1, 0.1)
        return float(sum((prec[rec >= t].max() if (rec >= t).any() else 0.0) for t in levels) / 11)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def _random_images(rng: np.random.Generator, n: int = 12) -> list[dict]:
    images = []
    for _ in range(n):
        k = int(rng.integers(1, 5))
        xy = rng.uniform(0, 200, (k, 2))
        wh = rng.uniform(20, 120, (k, 2))
        gt = np.concatenate([xy, xy + wh], 1).round()
        labels = rng.integers(0, 6, k)
        difficult = rng.random(k) < 0.2
        preds, scores, plabels = [], [], []
        for b, lab in zip(gt, labels):
            if rng.random() < 0.8:  # found, jittered; sometimes twice (a duplicate is a false positive)
                for _ in range(1 + int(rng.random() < 0.2)):
                    preds.append(b + rng.normal(0, 8, 4))
                    scores.append(rng.random())
                    plabels.append(lab if rng.random() < 0.9 else (lab + 1) % 6)
        for _ in range(int(rng.integers(0, 3))):  # background false positives
            p = rng.uniform(0, 250, 2)
            preds.append(np.concatenate([p, p + rng.uniform(10, 60, 2)]))
            scores.append(rng.random())
            plabels.append(int(rng.integers(0, 6)))
        images.append(
            dict(
                gt_boxes=gt[~difficult],
                gt_labels=labels[~difficult],
                ign_boxes=gt[difficult],
                ign_labels=labels[difficult],
                pred_boxes=np.array(preds).reshape(-1, 4),
                pred_scores=np.array(scores),
                pred_labels=np.array(plabels, dtype=np.int64),
            )
        )
    return images


def _image_sample(im: dict, pred_boxes, pred_scores, pred_labels) -> dict:
    """The _sample of one _random_images entry (its ground truth and ignored boxes) with the given predictions."""
    return _sample(
        im["gt_boxes"], im["gt_labels"], im["ign_boxes"], im["ign_labels"], pred_boxes, pred_scores, pred_labels
    )


@pytest.mark.parametrize("mode", ["11points", "area"])
def test_voc_metric_matches_independent_voc_devkit_ap(mode):
    images = _random_images(np.random.default_rng(3))
    samples = [_image_sample(im, im["pred_boxes"], im["pred_scores"], im["pred_labels"]) for im in images]
    res = _run(_metric(mode), samples)
    ref = {CLASSES[c]: _reference_ap(images, c, mode) for c in range(len(CLASSES))}
    ref = {k: v for k, v in ref.items() if v is not None}
    assert 0.1 < np.mean(list(ref.values())) < 0.95  # a non-trivial case
    assert set(k[3:] for k in res if k.startswith("AP_")) == set(ref)
    for name, ap in ref.items():
        assert res[f"AP_{name}"] == pytest.approx(ap, abs=1e-6), name
    assert res["mAP"] == pytest.approx(np.mean(list(ref.values())), abs=1e-6)


def test_voc07_11point_and_area_by_hand():
    # One class, two objects; a false positive (0.9) outranks the one true positive (0.8): recall reaches 0.5
    # at precision 0.5. 11-point: 6 of the 11 recall levels (0..0.5) see precision 0.5 -> 3/11; area: 0.25.
    sample = _sample(
        [[10, 10, 50, 50], [100, 100, 150, 150]],
        [2, 2],
        [],
        [],
        [[200, 200, 240, 240], [11, 10, 50, 51]],
        [0.9, 0.8],
        [2, 2],
    )
    assert _run(_metric("11points"), [sample])["mAP"] == pytest.approx(3 / 11, abs=1e-6)
    assert _run(_metric("area"), [sample])["mAP"] == pytest.approx(0.25, abs=1e-6)


def test_ground_truth_as_predictions_gives_100():
    images = _random_images(np.random.default_rng(0), n=8)
    samples = [
        _image_sample(im, im["gt_boxes"], np.linspace(1.0, 0.5, len(im["gt_boxes"])), im["gt_labels"]) for im in images
    ]
    for mode in ("11points", "area"):
        res = _run(_metric(mode), samples)
        assert res["mAP"] == pytest.approx(1.0)
        assert all(v == pytest.approx(1.0) for k, v in res.items() if k.startswith("AP_"))
