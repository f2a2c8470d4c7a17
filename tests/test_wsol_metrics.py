"""wsol.metrics: BoxAcc, MaxBoxAcc(V2), fixed-threshold localization and PxAP vs hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from cutmix_transfer.wsol import BoxEvaluator, MaskEvaluator, resize_mask

S = 224


def _iou(a, b):
    """Hand IoU with inclusive pixel coordinates, written out without numpy broadcasting."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = iw * ih
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return inter / union


def _three_images():
    """Three maps with two nested plateaus each, so the box at every threshold is known by construction.

    interval 0.25 -> thresholds [0, .25, .5, .75]; plateau values 0.4 (q=102) and 1.0 (q=255), max 255:
    cuts 0, 63, 127, 191 -> the outer plateau's box at t = 0 and 0.25, the inner one at t = 0.5 and 0.75.
    """
    specs = [  # (outer y0 y1 x0 x1 (inclusive), inner, gt boxes)
        ((20, 119, 30, 129), (50, 69, 60, 79), [[30, 20, 130, 120]]),
        ((0, 223, 0, 223), (100, 139, 100, 139), [[100, 100, 140, 140], [0, 0, 10, 10]]),
        ((10, 49, 10, 49), (20, 29, 20, 29), [[150, 150, 200, 200]]),
    ]
    maps, gts, boxes = [], [], []
    for (oy0, oy1, ox0, ox1), (iy0, iy1, ix0, ix1), gt in specs:
        m = np.zeros((S, S), np.float32)
        m[oy0 : oy1 + 1, ox0 : ox1 + 1] = 0.4
        m[iy0 : iy1 + 1, ix0 : ix1 + 1] = 1.0
        maps.append(m)
        gts.append(np.array(gt))
        outer = [ox0, oy0, min(ox1 + 1, S - 1), min(oy1 + 1, S - 1)]
        inner = [ix0, iy0, ix1 + 1, iy1 + 1]
        boxes.append([outer, outer, inner, inner])
    return maps, gts, boxes


def test_boxacc_three_images_by_hand():
    maps, gts, boxes = _three_images()
    ev = BoxEvaluator(iou_thresholds=(30, 50, 70), cam_curve_interval=0.25, fixed_threshold=0.5)
    ev.accumulate(np.stack(maps), gts, cls_correct=[True, False, True])
    res = ev.compute()
    best = np.array([[max(_iou(b, g) for g in gt) for b in bx] for bx, gt in zip(boxes, gts)])  # (3, 4)
    # image 0: outer box equals the GT (IoU 1); the inner 20x20 plateau gives the box [60,50,80,70], 21x21
    # pixels with the +1 convention, inside the 101x101 GT -> 441/10201
    assert best[0].tolist() == pytest.approx([1, 1, 441 / 10201, 441 / 10201])
    for iou in (30, 50, 70):
        want = (best >= iou / 100).mean(axis=0) * 100
        assert res[f"boxacc_v1_iou{iou}"] == pytest.approx(want.tolist())
        # one box per mask here, so V2 = V1
        assert res[f"boxacc_v2_iou{iou}"] == pytest.approx(want.tolist())
    # by hand at IoU 0.5: t=0: img0 yes, img1 (224x224 box vs 41x41 gt) no, img2 no -> 33.3
    #                     t=0.5: img0 no, img1 inner box [100,100,140,140] = its gt: yes, img2 no -> 33.3
    assert res["boxacc_v1_iou50"] == pytest.approx([100 / 3, 100 / 3, 100 / 3, 100 / 3])
    assert res["maxboxacc"] == pytest.approx(100 / 3)
    assert res["maxboxacc_best_threshold"] == 0.0  # first of the tied maxima
    want_v2 = np.mean([(best >= i / 100).mean(0).max() * 100 for i in (30, 50, 70)])
    assert res["maxboxacc_v2"] == pytest.approx(want_v2)
    # fixed threshold 0.5 (inner boxes): GT-known correct for img1 only; its class is wrong -> top-1 loc 0
    assert res["gt_known_loc"] == pytest.approx(100 / 3)
    assert res["top1_loc"] == 0.0
    assert res["top1_cls"] == pytest.approx(200 / 3)
    assert res["top1_loc_at_best_threshold"] == pytest.approx(100 / 3)  # t=0: img0 correct and right class


def test_v2_counts_hole_box():
    m = np.zeros((S, S), np.float32)
    m[50:150, 50:150] = 1.0
    m[90:110, 90:110] = 0.0
    ev = BoxEvaluator(cam_curve_interval=0.5)
    ev.accumulate(m[None], [np.array([[90, 90, 109, 109]])])
    res = ev.compute()
    # V1: outer box [50,50,150,150] vs gt: 400 / 10201 -> wrong; V2 hole box [89,89,111,111]: 400/529 -> right
    assert res["boxacc_v1_iou50"] == [0.0, 0.0]
    assert res["boxacc_v2_iou50"] == [100.0, 100.0]
    assert res["boxacc_v2_iou70"] == [100.0, 100.0]
    assert res["maxboxacc_v2"] == pytest.approx(100.0)
    assert res["top1_cls"] is None and res["top1_loc"] is None


def test_merge_equals_single_pass():
    rng = np.random.default_rng(0)
    maps = rng.random((6, 32, 32)).astype(np.float32)
    gts = [np.array([[int(a), int(b), int(a) + 10, int(b) + 12]]) for a, b in rng.integers(0, 20, (6, 2))]
    correct = rng.random(6) > 0.5
    full = BoxEvaluator(cam_curve_interval=0.05)
    full.accumulate(maps, gts, correct)
    a, b = BoxEvaluator(cam_curve_interval=0.05), BoxEvaluator(cam_curve_interval=0.05)
    a.accumulate(maps[:4], gts[:4], correct[:4])
    b.accumulate(maps[4:], gts[4:], correct[4:])
    a.merge(b.state_dict())
    assert a.compute() == full.compute()
    c = BoxEvaluator(cam_curve_interval=0.05)
    c.load_state_dict({k: v for k, v in full.state_dict().items()})
    assert c.compute() == full.compute()
    with pytest.raises(ValueError, match="shape"):
        BoxEvaluator(cam_curve_interval=0.01).merge(full.state_dict())


def test_empty_evaluator_and_bad_iou_list():
    with pytest.raises(ValueError, match="empty split"):
        BoxEvaluator().compute()
    with pytest.raises(ValueError, match="include 50"):
        BoxEvaluator(iou_thresholds=(30, 70))


def _sorted_ap(scores, labels):
    """Average precision straight from the sorted scores (every distinct score is an operating point)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    ap, tp, fp, prev_recall, npos = 0.0, 0, 0, 0.0, labels.sum()
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            tp += int(y[j])
            fp += int(not y[j])
            j += 1
        recall = tp / npos
        ap += tp / (tp + fp) * (recall - prev_recall)
        prev_recall = recall
        i = j
    return ap * 100


def test_pxap_matches_sort_based_ap():
    # scores on the 1/8 grid; interval 0.125 puts a threshold on every grid value below 1 and the [1, 2) bin
    # holds the 1.0s, so "score >= edge" separates every distinct score: the histogram AP is the exact AP.
    rng = np.random.default_rng(0)
    ev = MaskEvaluator(cam_curve_interval=0.125)
    all_s, all_y = [], []
    for _ in range(3):
        s = rng.integers(0, 9, (16, 16)) / 8.0
        y = rng.random((16, 16)) < s * 0.8 + 0.1
        ignore = np.zeros((16, 16), bool)
        ignore[:3, :3] = True
        ev.accumulate(s[None], y[None], ignore[None])
        keep = y | ~ignore
        all_s.append(s[keep])
        all_y.append(y[keep])
    res = ev.compute()
    assert res["pxap"] == pytest.approx(_sorted_ap(np.concatenate(all_s), np.concatenate(all_y)), rel=1e-12)


def test_pxap_tiny_by_hand():
    # 4 pixels: scores 0.9 (fg), 0.6 (bg), 0.3 (fg), 0.0 (bg); interval 0.5 -> edges [0, .5, 1, 2, 3]
    # points (score >= edge): >=2: none; >=1: none; >=0.5: tp1 fp1 (P .5, R .5); >=0: tp2 fp2 (P .5, R 1)
    # AP = 0.5 * 0.5 + 0.5 * 0.5 = 0.5
    ev = MaskEvaluator(cam_curve_interval=0.5)
    ev.accumulate(np.array([[[0.9, 0.6], [0.3, 0.0]]]), np.array([[[True, False], [True, False]]]))
    assert ev.compute()["pxap"] == pytest.approx(50.0)
    ev2 = MaskEvaluator(cam_curve_interval=0.5)
    ev2.merge(ev)
    assert ev2.compute()["pxap"] == pytest.approx(50.0)


def test_resize_mask_nearest():
    m = np.zeros((2, 2), np.uint8)
    m[0, 1] = 255
    r = resize_mask(m, (4, 4))
    assert r.tolist() == [[False, False, True, True]] * 2 + [[False] * 4] * 2
