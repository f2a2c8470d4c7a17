"""wsol.boxes: hand-computed boxes and IoUs, and the fast path equal to the per-threshold oracle."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cutmix_transfer.wsol import boxes as B

cv2.setNumThreads(1)
S = 224


def _norm(m: np.ndarray) -> np.ndarray:
    m = m.astype(np.float64)
    m = m - m.min()
    if m.max() > 0:
        m = m / m.max()
    return m.astype(np.float32)


# ---------------------------------------------------------------------------------------------- map makers
def cam_like(rng, cells):
    small = rng.random((cells, cells)).astype(np.float32)
    return _norm(cv2.resize(small, (S, S), interpolation=cv2.INTER_CUBIC))


def blurred_noise(rng, sigma):
    return _norm(cv2.GaussianBlur(rng.random((S, S)).astype(np.float32), (0, 0), sigma))


def blobs(rng, n):
    yy, xx = np.mgrid[0:S, 0:S]
    m = np.zeros((S, S))
    for _ in range(n):
        cy, cx = rng.uniform(-20, S + 20, 2)
        sy, sx = rng.uniform(5, 50, 2)
        m += rng.uniform(0.3, 1) * np.exp(-((yy - cy) ** 2 / (2 * sy**2) + (xx - cx) ** 2 / (2 * sx**2)))
    return _norm(m)


def rings(rng):
    m = np.zeros((S, S), np.float32)
    for _ in range(int(rng.integers(2, 6))):
        c = tuple(int(v) for v in rng.integers(0, S, 2))
        cv2.circle(m, c, int(rng.integers(5, 90)), float(rng.uniform(0.2, 1)), int(rng.integers(1, 6)))
    # a donut with an island in its hole
    cv2.circle(m, (112, 112), 60, 0.7, -1)
    cv2.circle(m, (112, 112), 30, 0.0, -1)
    cv2.circle(m, (112, 112), 8, 0.9, -1)
    return _norm(m)


def plateaus(rng, levels, cells):
    small = rng.integers(0, levels, (cells, cells)).astype(np.float32)
    return _norm(cv2.resize(small, (S, S), interpolation=cv2.INTER_NEAREST))


def sparse_pixels(rng, n, same_value):
    m = np.zeros((S, S), np.float32)
    ys, xs = rng.integers(0, S, n), rng.integers(0, S, n)
    m[ys, xs] = 1.0 if same_value else rng.uniform(0.05, 1, n)
    m[ys[0], xs[0]] = 1.0
    return m


def lines(rng):
    m = np.zeros((S, S), np.float32)
    for _ in range(8):
        p = tuple(int(v) for v in rng.integers(0, S, 2))
        q = tuple(int(v) for v in rng.integers(0, S, 2))
        cv2.line(m, p, q, float(rng.uniform(0.1, 1)), 1)
    m[0, :] = 0.5  # a line along the border
    m[:, S - 1] = 0.8
    return _norm(m)


def checker_and_touching():
    m = np.zeros((S, S), np.float32)
    m[10:40, 10:40] = (np.indices((30, 30)).sum(0) % 2).astype(np.float32)  # diagonal-touching pixels
    m[50:60, 50:60] = 0.6
    m[60:70, 60:70] = 0.6  # touches the first square diagonally only
    m[50:60, 80:90] = 0.6
    m[50:60, 90:100] = 0.4  # 4-touching at a lower level
    m[100:110, 100:110] = 0.6
    m[100:110, 111:121] = 0.6  # one-pixel gap
    m[150:170, 150:170] = 0.6  # two equal-area squares (a tie for V1)
    m[150:170, 190:210] = 0.6
    m[200:224, 0:24] = 1.0  # in the corner, touching two borders
    return m


def ties_at_cut():
    # 8-bit levels placed exactly on the cuts of interval 0.01: q == int(t * 255) must be background
    m = np.zeros((S, S), np.float64)
    for i, lvl in enumerate(range(0, 256, 7)):
        m[(i * 6) % S : (i * 6) % S + 5, (i * 11) % 200 : (i * 11) % 200 + 20] = lvl / 255.0
    m[0, 0] = 1.0
    return m.astype(np.float32)


def all_maps(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    maps = [(f"cam{c}_{i}", cam_like(rng, c)) for c in (7, 14, 28) for i in range(2)]
    maps += [(f"noise{s}", blurred_noise(rng, s)) for s in (3, 8)]
    maps += [(f"blobs{n}", blobs(rng, n)) for n in (1, 3, 6)]
    maps += [("rings", rings(rng)), ("plateaus", plateaus(rng, 5, 8))]
    maps += [("plateaus_fine", plateaus(rng, 3, 28))]
    maps += [("pixels_same", sparse_pixels(rng, 30, True)), ("pixels", sparse_pixels(rng, 40, False))]
    maps += [("lines", lines(rng)), ("checker", checker_and_touching()), ("ties", ties_at_cut())]
    maps += [
        ("empty", np.zeros((S, S), np.float32)),
        ("ones", np.ones((S, S), np.float32)),
        ("half", np.full((S, S), 0.5, np.float32)),
    ]
    single = np.zeros((S, S), np.float32)
    single[S - 1, S - 1] = 1.0
    maps += [("single_corner", single)]
    return maps


def gts_for(rng) -> np.ndarray:
    a = rng.integers(0, S, (2, 2))
    b = np.array([[min(a[0]), min(a[1]), max(a[0]), max(a[1])], [0, 0, 0, 0], [30, 40, 200, 180]])
    return b[: int(rng.integers(1, 4))]


# ---------------------------------------------------------------------------------------------- hand cases
def test_thresholds_are_reference_arange():
    assert np.array_equal(B.cam_thresholds(0.01), np.arange(0, 1, 0.01))
    assert B.cam_thresholds(0.001).size == 1000 and B.cam_thresholds(0.01)[0] == 0.0
    with pytest.raises(ValueError):
        B.cam_thresholds(0)


def test_quantize_floor_and_strict_threshold():
    m = np.zeros((S, S), np.float32)
    m[10:20, 30:50] = 0.5  # q = 127
    m[12:14, 32:34] = 1.0  # q = 255
    assert B.quantize_scoremap(m)[10, 30] == 127 and B.quantize_scoremap(m)[12, 32] == 255
    # t = 0.498 -> cut int(0.498 * 255) = 126 < 127 -> the 10x20 rectangle; box x1 = x + w, y1 = y + h
    assert B.boxes_at_threshold(m, 0.498, False).tolist() == [[30, 10, 50, 20]]
    # t = 0.4981 -> cut 127: 127 is not strictly above -> only the 2x2 square
    assert B.boxes_at_threshold(m, 127.5 / 255, False).tolist() == [[32, 12, 34, 14]]
    # nothing above the top cut -> [0, 0, 0, 0]
    assert B.boxes_at_threshold(np.zeros((S, S), np.float32), 0.0, False).tolist() == [[0, 0, 0, 0]]


def test_box_clipped_at_border():
    m = np.zeros((S, S), np.float32)
    m[200:, 210:] = 1.0
    # x + w = 224 -> clipped to 223; y + h = 224 -> 223
    assert B.boxes_at_threshold(m, 0.5, False).tolist() == [[210, 200, 223, 223]]


def test_v1_uses_polygon_area_not_pixel_count():
    m = np.zeros((S, S), np.float32)
    m[100, 10:110] = 1.0  # 100 pixels, polygon area 0
    m[150:153, 150:153] = 1.0  # 9 pixels, polygon area 4
    assert B.boxes_at_threshold(m, 0.5, False).tolist() == [[150, 150, 153, 153]]
    v2 = sorted(B.boxes_at_threshold(m, 0.5, True).tolist())
    assert v2 == [[10, 100, 110, 101], [150, 150, 153, 153]]


def test_v2_includes_hole_contours():
    m = np.zeros((S, S), np.float32)
    m[50:150, 50:150] = 1.0
    m[90:110, 90:110] = 0.0  # hole pixels 90..109
    boxes = sorted(B.boxes_at_threshold(m, 0.5, True).tolist())
    # the hole border runs through the foreground pixels 89..110 around it -> x1 = 89 + 22 = 111
    assert boxes == [[50, 50, 150, 150], [89, 89, 111, 111]]
    gt = np.array([[90, 90, 109, 109]])
    thr = [0.5]
    v1 = B.max_iou_curve_reference(m, gt, thr, False)[0]
    v2 = B.max_iou_curve_reference(m, gt, thr, True)[0]
    assert v1 == pytest.approx(400 / (101 * 101))
    assert v2 == pytest.approx(400 / (23 * 23))


def test_iou_plus1_hand_values():
    a = np.array([[0, 0, 9, 9], [5, 5, 14, 14], [0, 0, 0, 0], [20, 20, 29, 29]])
    b = np.array([[0, 0, 9, 9]])
    iou = B.box_iou_plus1(a, b)[:, 0]
    assert iou.tolist() == pytest.approx([1.0, 25 / 175, 1 / 100, 0.0])


def test_resize_boxes_truncates_like_reference():
    out = B.resize_boxes(np.array([[10, 20, 299, 199.9]]), (300, 200))
    # 10*224/300 = 7.47 -> 7; 20*224/200 = 22.4 -> 22; 299*224/300 = 223.25 -> 223;
    # 199.9*224/200 = 223.888 -> 223
    assert out.tolist() == [[7, 22, 223, 223]]


def test_invalid_inputs_rejected_by_both_paths():
    nan = np.full((8, 8), np.nan, np.float32)
    gt = np.array([[0, 0, 3, 3]])
    for fn in (B.max_iou_curve_reference, B.max_iou_curve):
        with pytest.raises(ValueError, match="NaN"):
            fn(nan, gt, [0.5], False)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            fn(np.full((8, 8), 1.5, np.float32), gt, [0.5], True)
        with pytest.raises(ValueError, match="x1 >= x0"):
            fn(np.zeros((8, 8), np.float32), np.array([[5, 0, 3, 3]]), [0.5], False)


# ------------------------------------------------------------------------------------------ fast == oracle
@pytest.mark.parametrize("interval", [0.01, 0.001])
def test_fast_equals_oracle(interval):
    thr = B.cam_thresholds(interval)
    rng = np.random.default_rng(1)
    maps = all_maps(0)
    if interval == 0.001:  # the 0.001 oracle is slow: the adversarial maps plus a few smooth ones
        maps = [m for m in maps if not m[0].startswith(("cam28", "noise3", "blobs6"))]
    for name, m in maps:
        gt = gts_for(rng)
        v1, v2 = B.iou_curves(m, gt, thr)
        r1 = B.max_iou_curve_reference(m, gt, thr, False)
        r2 = B.max_iou_curve_reference(m, gt, thr, True)
        assert np.array_equal(v1, r1), f"V1 differs on {name} at {np.flatnonzero(v1 != r1)[:5]}"
        assert np.array_equal(v2, r2), f"V2 differs on {name} at {np.flatnonzero(v2 != r2)[:5]}"
        assert np.array_equal(B.max_iou_curve(m, gt, thr, False), r1)
        assert (v2 >= v1).all()


def test_fast_equals_oracle_odd_shapes_and_thresholds():
    rng = np.random.default_rng(5)
    thr = np.array([0.0, 0.999, 1.0, 0.2, 0.2, 0.5, 0.0001])  # unsorted, repeated, both ends
    for shape in [(1, 1), (1, 30), (30, 1), (3, 3), (37, 61)]:
        for _ in range(5):
            m = _norm(rng.random(shape) ** 3)
            gt = np.array([[0, 0, shape[1] - 1, shape[0] - 1]])
            for mc in (False, True):
                ref = B.max_iou_curve_reference(m, gt, thr, mc)
                assert np.array_equal(B.max_iou_curve(m, gt, thr, mc), ref)


def test_tie_order_many_equal_contours():
    # many equal-area contours at one level: V1 must pick the same one OpenCV's order puts first
    rng = np.random.default_rng(3)
    thr = B.cam_thresholds(0.01)
    for _ in range(5):
        m = np.zeros((S, S), np.float32)
        for _ in range(12):
            y, x = rng.integers(0, S - 4, 2)
            m[y : y + 3, x : x + 3] = rng.choice([0.5, 1.0])
        gt = gts_for(rng)
        ref = B.max_iou_curve_reference(m, gt, thr, False)
        assert np.array_equal(B.max_iou_curve(m, gt, thr, False), ref)


def test_curves_for_batch_workers_match_serial():
    rng = np.random.default_rng(2)
    maps = np.stack([cam_like(rng, 7) for _ in range(6)])
    gts = [gts_for(rng) for _ in range(6)]
    thr = B.cam_thresholds(0.01)
    s1, s2 = B.curves_for_batch(maps, gts, thr, workers=1)
    p1, p2 = B.curves_for_batch(maps, gts, thr, workers=2)
    assert np.array_equal(s1, p1) and np.array_equal(s2, p2)
    for i in range(6):
        assert np.array_equal(s1[i], B.max_iou_curve_reference(maps[i], gts[i], thr, False))


# ------------------------------------------------------------------------------- compiled border follower
def _opencv_contours(binary: np.ndarray) -> list[tuple[int, ...]]:
    """(x_min, y_min, x_max, y_max, doubled area) of every findContours(RETR_TREE) contour, sorted."""
    out = []
    for c in cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]:
        x, y, w, h = cv2.boundingRect(c)
        out.append((x, y, x + w - 1, y + h - 1, int(round(2 * cv2.contourArea(c)))))
    return sorted(out)


def _assert_follower_matches_opencv(q: np.ndarray, levels: np.ndarray, what: str) -> None:
    raw = np.frombuffer(B._contours.trace_levels(q, q.shape[0], q.shape[1], levels), np.int64).reshape(-1, 6)
    assert (np.diff(raw[:, 0]) >= 0).all()  # grouped by level, in level order
    for m, v in enumerate(levels):
        ours = sorted(map(tuple, raw[raw[:, 0] == m, 1:].tolist()))
        assert ours == _opencv_contours((q >= v).astype(np.uint8) * 255), f"{what}, level {v}"


def _small_level_maps(rng, n):
    """Small uint8 maps of every texture the follower must get right: salt-and-pepper, all 256 levels,
    smooth upsampled, few levels (plateaus), one-pixel lines and checkerboards, odd shapes down to 1x1."""
    for i in range(n):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        kind = i % 5
        if kind == 0:
            q = (rng.random((h, w)) < rng.uniform(0.2, 0.8)).astype(np.uint8) * 200 + 1
        elif kind == 1:
            q = rng.integers(0, 256, (h, w)).astype(np.uint8)
        elif kind == 2:
            small = rng.random((h // 4 + 1, w // 4 + 1)).astype(np.float32)
            q = (cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)
        elif kind == 3:
            q = rng.integers(0, 4, (h, w)).astype(np.uint8) * 60
        else:
            q = ((np.indices((h, w)).sum(0) % 2) * 100 + rng.integers(0, 2, (h, w)) * 50).astype(np.uint8)
        yield q


def test_follower_matches_opencv_contour_for_contour():
    # every contour of every level: same count, same boxes (boundingRect), same areas (2 * contourArea)
    rng = np.random.default_rng(11)
    checked = 0
    for q in _small_level_maps(rng, 400):
        levels = np.unique(q[q > 0]).astype(np.int64)
        if levels.size:
            _assert_follower_matches_opencv(q, levels, f"a {q.shape} map")
            checked += levels.size
    assert checked > 5000


def test_follower_on_the_adversarial_maps():
    for name, m in all_maps(0):
        q = B.quantize_scoremap(m)
        levels = np.ascontiguousarray(np.unique(q[q > 0]).astype(np.int64)[::3])
        _assert_follower_matches_opencv(q, levels, name)


def test_follower_rejects_bad_arguments():
    q = np.zeros((4, 5), np.uint8)
    with pytest.raises(ValueError, match="height \\* width"):
        B._contours.trace_levels(q, 5, 5, np.array([1], np.int64))
    with pytest.raises(ValueError, match="strictly increasing"):
        B._contours.trace_levels(q, 4, 5, np.array([3, 2], np.int64))
    with pytest.raises(ValueError, match="strictly increasing"):
        B._contours.trace_levels(q, 4, 5, np.array([0], np.int64))
    assert B._contours.trace_levels(q, 4, 5, np.array([1, 7], np.int64)) == b""  # empty masks: no contour


def test_tie_between_differently_scoring_boxes_is_settled_by_opencv(monkeypatch):
    # two squares of equal area at one level: the reference keeps the first in OpenCV's order, so the fast
    # path must ask OpenCV exactly there (and only there)
    m = np.zeros((S, S), np.float32)
    m[20:40, 20:40] = 0.8
    m[150:170, 150:170] = 0.8
    m[100:103, 10:13] = 1.0
    thr = B.cam_thresholds(0.01)
    calls = []
    real = B._boxes_from_binary

    def counted(binary, multi_contour):
        calls.append(multi_contour)
        return real(binary, multi_contour)

    for gt in (np.array([[20, 20, 39, 39]]), np.array([[150, 150, 169, 169]])):
        calls.clear()
        monkeypatch.setattr(B, "_boxes_from_binary", counted)
        v1, _ = B.iou_curves(m, gt, thr)
        monkeypatch.setattr(B, "_boxes_from_binary", real)
        assert calls == [False]  # the one level where the squares tie
        assert np.array_equal(v1, B.max_iou_curve_reference(m, gt, thr, False))


def test_follower_iou_is_numpys_for_fractional_gt_boxes():
    # the compiled IoU must equal box_iou_plus1 bit for bit, also where the products are not integers
    rng = np.random.default_rng(8)
    thr = B.cam_thresholds(0.01)
    for name, m in all_maps(0)[:8]:
        gt = np.sort(rng.uniform(0, S - 1, (3, 2, 2)), axis=1).transpose(0, 2, 1).reshape(3, 4)[:, [0, 2, 1, 3]]
        for mc in (False, True):
            assert np.array_equal(B.max_iou_curve(m, gt, thr, mc), B.max_iou_curve_reference(m, gt, thr, mc)), name
