"""What the mutation run of wsol/metrics.py found untested (docs/mutation.md): the evaluators' count state (int64
after loading any numeric state, a missing or misshapen entry named in a ValueError), the fixed-threshold column
of BoxEvaluator.accumulate (GT-known loc is read at fixed_threshold, not at the last curve threshold), the curves it
returns, and that it hands its workers and pool to the curve computation. Expectations are hand-computed boxes."""

from __future__ import annotations

import numpy as np
import pytest

from cutmix_transfer.wsol import metrics
from cutmix_transfer.wsol.metrics import BoxEvaluator, MaskEvaluator, resize_mask


def _two_level_map() -> tuple[np.ndarray, np.ndarray]:
    """A 224x224 map: 1.0 on rows/cols [50, 100) (the GT box), 0.5 on [20, 180) around it, 0 elsewhere."""
    m = np.zeros((224, 224), np.float32)
    m[20:180, 20:180] = 0.5
    m[50:100, 50:100] = 1.0
    return m, np.array([[50, 50, 99, 99]], np.float32)


def _iou_at(t: float) -> float:
    """wsolevaluation's rule, written out for this map: the mask is uint8(map * 255) > int(t * 255) (0.5 -> 127),
    its box cv2.boundingRect's (x, y, x + w, y + h), IoU with inclusive (+1) areas against [50, 50, 99, 99]."""
    x0, x1 = (20, 180) if 127 > int(t * 255) else (50, 100)
    side = x1 - x0 + 1
    inter = (min(x1, 99) - max(x0, 50) + 1) ** 2
    return inter / (side * side + 50 * 50 - inter)


def test_fixed_threshold_column_and_returned_curves():
    m, gt = _two_level_map()
    ev = BoxEvaluator(cam_curve_interval=0.25, fixed_threshold=0.2)  # curve thresholds 0, .25, .5, .75
    v1, v2 = ev.accumulate(m[None], [gt], cls_correct=[True])
    assert v1.shape == v2.shape == (1, 4)
    np.testing.assert_allclose(v1[0], [_iou_at(t) for t in (0, 0.25, 0.5, 0.75)], rtol=1e-12)
    np.testing.assert_allclose(v2, v1, rtol=1e-12)  # one contour at every threshold
    assert _iou_at(0.2) < 0.5 < _iou_at(0.75)
    # at the fixed threshold 0.2 the box is the wide one: below IoU 0.5, so not GT-known; the last curve
    # threshold (0.75) would have given the tight one
    out = ev.compute()
    assert out["gt_known_loc"] == 0.0 and out["top1_loc"] == 0.0 and out["top1_cls"] == 100.0
    assert out["maxboxacc"] == 100.0 and out["maxboxacc_best_threshold"] == 0.5
    high = BoxEvaluator(cam_curve_interval=0.25, fixed_threshold=0.6)
    high.accumulate(m[None], [gt], cls_correct=[False])
    assert high.compute()["gt_known_loc"] == 100.0 and high.compute()["top1_loc"] == 0.0


def test_accumulate_hands_its_workers_and_pool_to_the_curves(monkeypatch):
    seen = []
    real = metrics.curves_for_batch

    def spy(scoremaps, gt_boxes, thresholds, workers=1, pool=None):
        seen.append((workers, pool))
        return real(scoremaps, gt_boxes, thresholds)

    monkeypatch.setattr(metrics, "curves_for_batch", spy)
    m, gt = _two_level_map()
    pool = object()  # only passed through
    BoxEvaluator(cam_curve_interval=0.25, workers=3).accumulate(m[None], [gt], pool=pool)
    BoxEvaluator(cam_curve_interval=0.25).accumulate(m[None], [gt])
    assert seen == [(3, pool), (1, None)]


def test_state_is_int64_whatever_numeric_state_is_loaded():
    m, gt = _two_level_map()
    ev = BoxEvaluator(cam_curve_interval=0.25)
    ev.accumulate(np.stack([m, m]), [gt, gt], cls_correct=[True, False])
    state = ev.state_dict()
    assert all(v.dtype == np.int64 for v in state.values())
    assert state["num_images"].tolist() == [2] and state["num_top1_cls"].tolist() == [1]
    as_float = {k: v.astype(np.float64) for k, v in state.items()}  # e.g. after an all-reduce of float tensors
    loaded = BoxEvaluator(cam_curve_interval=0.25)
    loaded.load_state_dict(as_float)
    assert loaded.num_correct_v1.dtype == np.int64 and loaded.num_correct_v2.dtype == np.int64
    assert type(loaded.num_images) is int and loaded.num_images == 2
    merged = BoxEvaluator(cam_curve_interval=0.25)
    merged.merge(as_float)
    merged.merge(ev)
    assert merged.num_correct_v1.dtype == np.int64 and merged.num_images == 4
    np.testing.assert_array_equal(merged.num_correct_v1, 2 * ev.num_correct_v1)
    assert merged.compute()["maxboxacc"] == ev.compute()["maxboxacc"]
    px = MaskEvaluator(cam_curve_interval=0.25)
    px.load_state_dict(
        {k: v.astype(np.float32) for k, v in MaskEvaluator(cam_curve_interval=0.25).state_dict().items()}
    )
    assert px.gt_true_hist.dtype == np.int64 and type(px.num_images) is int


def test_bad_state_names_the_entry():
    ev = BoxEvaluator(cam_curve_interval=0.25)
    state = ev.state_dict()
    with pytest.raises(ValueError, match=r"state is missing \['num_correct_v2', 'num_images'\]"):
        ev.load_state_dict({k: v for k, v in state.items() if k not in ("num_images", "num_correct_v2")})
    wrong = dict(state, num_correct_v1=np.zeros((3, 5), np.int64))
    with pytest.raises(ValueError, match=r"state 'num_correct_v1' has shape \(3, 5\); this evaluator expects \(3, 4\)"):
        ev.load_state_dict(wrong)
    with pytest.raises(ValueError, match=r"state 'num_correct_v1' has shape \(3, 5\)"):
        ev.merge(wrong)
    with pytest.raises(ValueError, match=r"state 'gt_true_hist' has shape \(3,\)"):
        MaskEvaluator(cam_curve_interval=0.25).merge(
            {"num_images": np.array([1]), "gt_true_hist": np.zeros(3), "gt_false_hist": np.zeros(6)}
        )


# ------------------------------------------------------------------------------------------------ PxAP's outputs
def test_pxap_curve_points_counted_by_hand():
    # interval 0.25: bins [0, .25), [.25, .5), [.5, .75), [.75, 1), [1, 2), [2, 3]; "score >= edge" at the edges
    # 2, 1, .75, .5, .25, 0. Image 1 (masks as 0/1 integers): fg scores 1.0, 0.8, 0.3; bg 0.6, 0.1 and an ignored
    # 0.9. Image 2 (no ignore mask): fg 0.55; bg 0.0 and 1.0.
    s1 = np.array([[1.0, 0.8, 0.3], [0.6, 0.1, 0.9]])
    fg1 = np.array([[1, 1, 1], [0, 0, 0]], np.uint8)
    ig1 = np.array([[0, 0, 0], [0, 0, 1]], np.uint8)
    s2 = np.array([[0.55, 0.0, 1.0]])
    fg2 = np.array([[1, 0, 0]], np.uint8)
    ev = MaskEvaluator(cam_curve_interval=0.25)
    ev.accumulate([s1, s2], [fg1, fg2], [ig1, None])
    np.testing.assert_array_equal(ev.gt_true_hist, [0, 1, 1, 1, 1, 0])  # 0.3 | 0.55 | 0.8 | 1.0
    np.testing.assert_array_equal(ev.gt_false_hist, [2, 0, 1, 0, 1, 0])  # 0.1, 0.0 | 0.6 | 1.0
    out = ev.compute()
    # edges 2, 1, .75, .5, .25, 0 -> tp 0, 1, 2, 3, 4, 4; fp 0, 1, 1, 2, 2, 4
    tp, fp = np.array([0, 1, 2, 3, 4, 4.0]), np.array([0, 1, 1, 2, 2, 4.0])
    assert out["pr_thresholds"] == [2.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert out["precision"][0] is None  # nothing scores >= 2: no precision, not 0
    assert out["precision"][1:] == pytest.approx(list(tp[1:] / (tp[1:] + fp[1:])), rel=1e-15)
    assert out["recall"] == pytest.approx(list(tp / 4), rel=1e-15)
    want = sum(tp[k] / (tp[k] + fp[k]) * (tp[k] - tp[k - 1]) / 4 for k in range(1, 6))
    assert out["pxap"] == pytest.approx(100 * want, rel=1e-12) and out["num_images"] == 2


def test_pxap_one_positive_pixel_and_empty_masks():
    ev = MaskEvaluator(cam_curve_interval=0.5)
    ev.accumulate([np.array([[1.0, 0.2]])], [np.array([[True, False]])])  # one fg pixel: enough
    out = ev.compute()
    assert out["precision"][:2] == [None, 1.0] and out["pxap"] == pytest.approx(100.0)  # >= 1: tp 1, fp 0
    empty = MaskEvaluator(cam_curve_interval=0.5)
    empty.accumulate([np.array([[1.0, 0.2]])] * 3, [np.zeros((1, 2), bool)] * 3)
    assert empty.num_images == 3
    with pytest.raises(ValueError, match="at least one foreground mask pixel"):
        empty.compute()


def test_resize_mask_threshold_and_input_types():
    m = np.array([[0.0, 0.5], [0.51, 1.0]])
    assert resize_mask(m, (2, 2)).tolist() == [[False, False], [True, True]]  # > 0.5, as the reference
    assert resize_mask(np.array([[0, 1]], np.uint8), (2, 1)).tolist() == [[False, True]]  # 1 is foreground
    assert resize_mask(np.array([[False, True]]), (4, 1)).tolist() == [[False, False, True, True]]  # bool works
    with pytest.raises(ValueError, match=r"mask must be 2-D \(h, w\); got shape \(1, 1, 2\)"):
        resize_mask(np.zeros((1, 1, 2)))


# ------------------------------------------------------------------------------------------------ BoxAcc's outputs
# Three images' curves over the thresholds 0, .25, .5, .75 (interval 0.25), written by hand, with IoUs exactly at
# the 0.3 / 0.5 / 0.7 cuts (the reference counts IoU >= cut).
V1 = [[0.3, 0.5, 0.7, 0.1], [0.5, 0.69, 0.2, 0.0], [0.29, 0.5, 0.71, 0.3]]
V2 = [[0.3, 0.6, 0.7, 0.5], [0.5, 0.7, 0.5, 0.0], [0.31, 0.49, 0.71, 0.7]]
FIXED = [0.5, 0.49, 0.7]
CORRECT = [True, False, True]


def _counts(curves, cut, rows=(0, 1, 2)):
    return [sum(curves[i][t] >= cut for i in rows) for t in range(4)]


def test_boxacc_compute_every_entry_by_hand():
    ev = BoxEvaluator(cam_curve_interval=0.25, fixed_threshold=0.3, fixed_iou=50)
    ev.accumulate_curves(V1[:2], V2[:2], FIXED[:2], CORRECT[:2])
    ev.accumulate_curves(V1[2], V2[2], FIXED[2], CORRECT[2])  # one image as 1-D curves: added, not replaced
    out = ev.compute()
    assert out["num_images"] == 3 and out["thresholds"] == [0.0, 0.25, 0.5, 0.75]
    assert out["cam_curve_interval"] == 0.25 and out["iou_thresholds"] == [30, 50, 70]
    assert out["fixed_threshold"] == 0.3 and out["fixed_iou"] == 50
    best = {}
    for iou in (30, 50, 70):
        acc1 = [100 * c / 3 for c in _counts(V1, iou / 100)]
        acc2 = [100 * c / 3 for c in _counts(V2, iou / 100)]
        assert out[f"boxacc_v1_iou{iou}"] == pytest.approx(acc1) and out[f"boxacc_v2_iou{iou}"] == pytest.approx(acc2)
        b1, b2 = acc1.index(max(acc1)), acc2.index(max(acc2))  # the first best threshold on ties
        assert out[f"maxboxacc_v1_iou{iou}"] == pytest.approx(acc1[b1])
        assert out[f"best_threshold_v1_iou{iou}"] == 0.25 * b1
        assert out[f"maxboxacc_v2_iou{iou}"] == pytest.approx(acc2[b2])
        assert out[f"best_threshold_v2_iou{iou}"] == 0.25 * b2
        top1 = [100 * c / 3 for c in _counts(V1, iou / 100, rows=(0, 2))]  # images 0 and 2 are classified right
        assert out[f"top1_loc_v1_iou{iou}"] == pytest.approx(top1)
        best[iou] = (b1, acc2[b2])
    assert out["maxboxacc"] == out["maxboxacc_v1_iou50"] and out["maxboxacc_best_threshold"] == 0.25 * best[50][0]
    assert out["maxboxacc_v2"] == pytest.approx(np.mean([best[i][1] for i in (30, 50, 70)]))
    assert out["gt_known_loc"] == pytest.approx(200 / 3)  # fixed IoUs 0.5, 0.49, 0.7 against 0.5
    assert out["top1_cls"] == pytest.approx(200 / 3) and out["top1_loc"] == pytest.approx(200 / 3)
    b = best[50][0]
    assert out["top1_loc_at_best_threshold"] == pytest.approx(100 * sum(V1[i][b] >= 0.5 for i in (0, 2)) / 3)
    unknown = BoxEvaluator(cam_curve_interval=0.25)
    unknown.accumulate_curves(V1, V2, FIXED)
    u = unknown.compute()
    assert u["top1_cls"] is None and u["top1_loc"] is None and u["top1_loc_at_best_threshold"] is None
    assert not any(k.startswith("top1_loc_v1") for k in u)


def test_accumulate_curves_reads_columns_and_numeric_flags():
    ev = BoxEvaluator(cam_curve_interval=0.25, fixed_threshold=0.3)
    # fixed IoUs and the flags as (B, 1) columns, the flags as 0.0 / 1.0: read as (B,) bools
    ev.accumulate_curves(np.array(V1), np.array(V2), np.array(FIXED)[:, None], np.array([[1.0], [0.0], [1.0]]))
    ref = BoxEvaluator(cam_curve_interval=0.25, fixed_threshold=0.3)
    ref.accumulate_curves(V1, V2, FIXED, CORRECT)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(ev.state_dict()[k], v, err_msg=k)
    for v1, v2, fixed, why in (
        (V1, [r[:3] for r in V2], FIXED, r"v2 \(3, 3\)"),
        (V1, V2, FIXED[:2], r"fixed_v1 \(2,\)"),
        ([r[:3] for r in V1], [r[:3] for r in V2], FIXED, r"v1 \(3, 3\)"),
    ):
        with pytest.raises(ValueError, match=r"curves must be \(B, 4\) and fixed_v1 \(B,\); got .*" + why):
            ev.accumulate_curves(v1, v2, fixed)
    with pytest.raises(ValueError, match=r"cls_correct must have shape \(3,\); got \(2,\)"):
        ev.accumulate_curves(V1, V2, FIXED, [True, False])
    assert ev.num_images == 3  # nothing was added by the refused calls


def test_evaluator_options_at_their_bounds():
    ok = BoxEvaluator(iou_thresholds=(1, 50, 100), cam_curve_interval=0.25, fixed_threshold=1.0)
    assert ok.iou_thresholds == (1, 50, 100) and ok.fixed_threshold == 1.0 and ok.cam_curve_interval == 0.25
    assert BoxEvaluator(iou_thresholds=[50], fixed_threshold=0.0).fixed_threshold == 0.0
    for ious in ((0, 50), (50, 101), (50, 50, 70), ()):
        with pytest.raises(ValueError, match="distinct percentages in"):
            BoxEvaluator(iou_thresholds=ious)
    with pytest.raises(ValueError, match="must include 50"):
        BoxEvaluator(iou_thresholds=(30, 70))
    for bad in (-0.01, 1.01, 2.0):
        with pytest.raises(ValueError, match=r"fixed_threshold must be in \[0, 1\]"):
            BoxEvaluator(fixed_threshold=bad)


def test_mask_evaluator_defaults_and_integer_histograms():
    ev = MaskEvaluator()
    assert ev.cam_curve_interval == 0.01 and ev.thresholds.size == 100  # wsolevaluation's default bins
    assert MaskEvaluator(0.25).cam_curve_interval == 0.25
    assert all(v.dtype == np.int64 for v in ev.state_dict().values())
    ev.accumulate([np.array([[0.5, 1.0]])], [np.array([[True, False]])])
    assert ev.gt_true_hist.dtype == ev.gt_false_hist.dtype == np.int64 and ev.gt_true_hist.sum() == 1
    assert BoxEvaluator().thresholds.size == 100 and BoxEvaluator().cam_curve_interval == 0.01


def test_an_iou_just_below_the_cut_is_a_miss():
    # 0.497 lies between 0.495 (IoU / 101) and 0.5: the reference compares IoU >= IoU threshold / 100 exactly
    ev = BoxEvaluator(cam_curve_interval=0.25, fixed_iou=50)
    near = [[0.297, 0.497, 0.697, 0.0]]
    ev.accumulate_curves(near, near, [0.497], [True])
    below = [[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]  # IoU 30, 50, 70: each 0.xx7 just misses its own cut
    for counts in (ev.num_correct_v1, ev.num_correct_v2, ev.num_top1_loc_v1):
        np.testing.assert_array_equal(counts, below)
    assert ev.num_gt_known_fixed == 0 and ev.num_top1_loc_fixed == 0
    ev.accumulate_curves([[0.3, 0.5, 0.7, 0.0]], [[0.3, 0.5, 0.7, 0.0]], [0.5], [True])
    np.testing.assert_array_equal(ev.num_correct_v1, np.add(below, [[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0]]))
    assert ev.num_gt_known_fixed == 1 and ev.num_top1_loc_fixed == 1
