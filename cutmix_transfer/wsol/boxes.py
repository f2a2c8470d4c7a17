"""Score map -> boxes at every CAM threshold, with wsolevaluation's exact semantics, fast.

Conventions (the same as clovaai/wsolevaluation's evaluation.py; docs/wsol_protocol.md spells them out):
- a score map is (H, W) float in [0, 1], already resized (224x224) and min-max normalised;
- it is quantised once: ``q = floor(scoremap * 255)`` as uint8 (``(scoremap * 255).astype(np.uint8)``);
- threshold ``t`` keeps the pixels with ``q > int(t * q.max())`` (cv2.THRESH_BINARY: strictly greater);
- the contours are cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE): outer borders and hole borders;
- V1 (``multi_contour=False``) keeps the one contour of largest ``cv2.contourArea`` (polygon area;
  the first in OpenCV's order on ties); V2 (``multi_contour=True``) keeps every contour;
- a contour's box is ``x0, y0 = x, y``; ``x1 = min(x + w, W - 1)``; ``y1 = min(y + h, H - 1)`` from
  cv2.boundingRect (so an unclipped box is one pixel larger than the contour), boxes are x0 y0 x1 y1 ints;
- an empty mask gives the single box [0, 0, 0, 0];
- IoU uses the +1 (inclusive pixel) convention.

``max_iou_curve_reference`` is the plain per-threshold implementation (one findContours per threshold) and
serves as the test oracle. ``iou_curves`` / ``max_iou_curve`` give identical numbers faster, because
1. many thresholds give the same mask: ``q > c`` only changes when a present 8-bit level lies between two
   cuts, so each distinct mask is traced once (at interval 0.001 about 4x fewer masks than thresholds);
2. all distinct masks of a map are traced in one call to a compiled border follower (``_contours.c``,
   Suzuki & Abe's algorithm as in findContours(RETR_TREE)) that keeps only each contour's box and doubled
   polygon area: the masks are nested, so its work image is updated from level to level rather than
   rebuilt, its raster scan covers the mask's bounding box 16 pixels at a time, and no contour point is
   stored or converted to a Python object. Its contours, boxes and areas are OpenCV's exactly (tested
   against cv2.findContours + cv2.boundingRect + cv2.contourArea); only the order of contours within a mask
   differs, so a tie for the largest area between boxes that score differently is settled by OpenCV itself;
3. V1 and V2 come from the same contours (one pass for both), and the follower scores the boxes itself
   (box_iou_plus1's float64 operations in the same order), so a map costs one call, with no per-contour
   Python or numpy work;
4. ``curves_for_batch`` spreads images over worker processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

try:
    from . import _contours

    _CONTOURS_ERROR = ""
except ImportError as exc:  # reported with the fix when the fast path is first used
    _contours = None
    _CONTOURS_ERROR = str(exc)

logger = logging.getLogger(__name__)

RESIZE_LENGTH = 224
_EMPTY_BOX = np.zeros((1, 4), dtype=np.int64)


# ----------------------------------------------------------------------------------------------------------
# Shared pieces: thresholds, quantisation, GT rescaling, IoU
# ----------------------------------------------------------------------------------------------------------
def cam_thresholds(cam_curve_interval: float = 0.01) -> np.ndarray:
    """The CAM thresholds wsolevaluation scans: ``np.arange(0, 1, interval)`` (float64, 0 included, 1 not).

    Kept as np.arange on purpose (float steps such as 0.07000000000000001 included) so that every cut
    ``int(t * max)`` equals the reference's.
    """
    interval = float(cam_curve_interval)
    if not 0.0 < interval < 1.0:
        raise ValueError(
            f"cam_curve_interval must be in (0, 1); got {cam_curve_interval!r}. "
            "Use e.g. 0.01 (wsolevaluation's CLI default) or 0.001."
        )
    return np.arange(0, 1, interval)


def validate_scoremap(scoremap: np.ndarray) -> np.ndarray:
    """Check a score map as wsolevaluation's check_scoremap_validity does (2-D, no NaN, within [0, 1])."""
    if not isinstance(scoremap, np.ndarray):
        raise TypeError(f"scoremap must be a numpy array; got {type(scoremap).__name__}")
    if scoremap.ndim != 2:
        raise ValueError(f"scoremap must be 2-D (H, W); got shape {scoremap.shape}")
    if not np.issubdtype(scoremap.dtype, np.floating):
        raise TypeError(f"scoremap must be floating point in [0, 1]; got dtype {scoremap.dtype}")
    if np.isnan(scoremap).any():
        raise ValueError("scoremap contains NaN; normalise it first (normalize_cams maps NaN maps to zeros)")
    if scoremap.size and (scoremap.min() < 0 or scoremap.max() > 1):
        raise ValueError(f"scoremap must lie in [0, 1]; got min {scoremap.min()} max {scoremap.max()}")
    return scoremap


def quantize_scoremap(scoremap: np.ndarray) -> np.ndarray:
    """(H, W) float in [0, 1] -> (H, W) uint8 ``floor(s * 255)``, wsolevaluation's 8-bit quantisation.

    The product is taken in float64 (the reference receives float64 maps); for float32 input this is the
    exact floor of ``s * 255``.
    """
    validate_scoremap(scoremap)
    return (scoremap.astype(np.float64) * 255).astype(np.uint8)


def threshold_cuts(q_max: int, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """(T,) int64 cuts ``int(t * q_max)``; a pixel is foreground at threshold t when ``q > cut``."""
    thr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if thr.size and (np.isnan(thr).any() or thr.min() < 0 or thr.max() > 1):
        raise ValueError(f"CAM thresholds must lie in [0, 1]; got min {thr.min()} max {thr.max()}")
    # int() truncates toward zero; all products are >= 0 so astype(int64) is the same truncation.
    return (thr * float(q_max)).astype(np.int64)


def resize_boxes(
    boxes_xyxy: np.ndarray, image_size_wh: tuple[int, int], resize_wh: tuple[int, int] = (RESIZE_LENGTH, RESIZE_LENGTH)
) -> np.ndarray:
    """(K, 4) x0y0x1y1 boxes in original pixels -> (K, 4) int64 in the resized frame, as wsolevaluation's
    resize_bbox: each coordinate scaled by new/old size in float64 and truncated with int()."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    w, h = map(float, image_size_wh)
    nw, nh = map(float, resize_wh)
    if w <= 0 or h <= 0:
        raise ValueError(f"image size must be positive; got {image_size_wh}")
    # (x * new) / old, in that order, as the reference computes it.
    out = np.empty_like(boxes)
    out[:, 0] = boxes[:, 0] * nw / w
    out[:, 1] = boxes[:, 1] * nh / h
    out[:, 2] = boxes[:, 2] * nw / w
    out[:, 3] = boxes[:, 3] * nh / h
    return np.trunc(out).astype(np.int64)


def validate_boxes(boxes_xyxy: np.ndarray, name: str = "gt_boxes_xyxy") -> np.ndarray:
    """(K, 4) x0y0x1y1 boxes, K >= 1, non-negative, x1 >= x0 and y1 >= y0 (check_box_convention); float64."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.ndim == 1 and boxes.shape[0] == 4:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.shape[0] == 0:
        raise ValueError(f"{name} must have shape (K, 4) with K >= 1 (x0 y0 x1 y1); got {boxes.shape}")
    if (boxes < 0).any():
        raise ValueError(f"{name} must be non-negative; got {boxes.tolist()}")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise ValueError(f"{name} must follow x0 y0 x1 y1 with x1 >= x0 and y1 >= y0; got {boxes.tolist()}")
    return boxes


def box_iou_plus1(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) x0y0x1y1 boxes -> (N, M) float64 IoU with the +1 convention (a box [x0, x1] spans
    x1 - x0 + 1 pixels), as wsolevaluation's calculate_multiple_iou; a non-positive union gives 0."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)[None, :, :]
    iw = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    degenerate = union <= 0
    return np.where(degenerate, 0.0, inter / np.where(degenerate, 1.0, union))


# ----------------------------------------------------------------------------------------------------------
# The reference: one findContours per threshold (the test oracle)
# ----------------------------------------------------------------------------------------------------------
def _boxes_from_binary(binary: np.ndarray, multi_contour: bool) -> np.ndarray:
    """Contour boxes of one uint8 binary mask, exactly as wsolevaluation's scoremap2bbox."""
    height, width = binary.shape
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return _EMPTY_BOX.copy()
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]  # first of the largest, as Python's max
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return np.asarray(boxes, dtype=np.int64)


def boxes_at_threshold(scoremap: np.ndarray, threshold: float, multi_contour: bool) -> np.ndarray:
    """(N, 4) int64 x0y0x1y1 boxes of a (H, W) [0, 1] score map at one CAM threshold (reference semantics):
    N = 1 for V1 (largest contour) or for an empty mask ([0, 0, 0, 0]), every contour's box for V2."""
    q = quantize_scoremap(scoremap)
    cut = int(threshold_cuts(int(q.max()) if q.size else 0, [threshold])[0])
    _, binary = cv2.threshold(q, cut, 255, cv2.THRESH_BINARY)
    return _boxes_from_binary(binary, multi_contour)


def max_iou_curve_reference(
    scoremap: np.ndarray, gt_boxes_xyxy: np.ndarray, thresholds: Sequence[float] | np.ndarray, multi_contour: bool
) -> np.ndarray:
    """(T,) float64 best IoU (+1 convention) between the boxes at each threshold and any GT box.

    The plain oracle: thresholds with cv2.threshold and traces with findContours once per threshold, exactly
    as wsolevaluation's compute_bboxes_from_scoremaps + calculate_multiple_iou. GT boxes (K, 4) x0y0x1y1
    must already be in the score map's frame (224x224).
    """
    gt = validate_boxes(gt_boxes_xyxy)
    q = quantize_scoremap(scoremap)
    q_max = int(q.max()) if q.size else 0
    cuts = threshold_cuts(q_max, thresholds)
    curve = np.zeros(len(cuts), dtype=np.float64)
    for i, cut in enumerate(cuts):
        _, binary = cv2.threshold(q, int(cut), 255, cv2.THRESH_BINARY)
        boxes = _boxes_from_binary(binary, multi_contour)
        curve[i] = box_iou_plus1(boxes, gt).max()
    return curve


# ----------------------------------------------------------------------------------------------------------
# The fast path: distinct masks only, all traced in one call to the compiled border follower
# ----------------------------------------------------------------------------------------------------------
def _distinct_mask_levels(q: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map each cut to the mask it produces. Mask(cut) = {q > cut} = {q >= v} with v the smallest level
    present in q above cut. Returns (levels (M,) the distinct v, index (T,) into levels or -1 if empty)."""
    present = np.bincount(q.ravel(), minlength=256)[:256] > 0
    # next_level[c] = smallest present level > c, for c in 0..255 (256 = none)
    lv = np.where(present, np.arange(256), 256)
    suffix_min = np.minimum.accumulate(lv[::-1])[::-1]  # smallest present level >= c
    next_level = np.append(suffix_min[1:], 256)  # smallest present level > c
    keys = next_level[np.clip(cuts, 0, 255)]
    keys[cuts >= 255] = 256
    levels, inverse = np.unique(keys, return_inverse=True)
    index = inverse.reshape(-1).astype(np.int64)
    if levels.size and levels[-1] == 256:
        index[index == levels.size - 1] = -1
        levels = levels[:-1]
    return levels.astype(np.int64), index


def _follower():
    """The compiled border follower (``_contours.c``), or an ImportError that says how to build it."""
    if _contours is None:
        raise ImportError(
            f"the compiled border follower cutmix_transfer.wsol._contours is not built "
            f"({_CONTOURS_ERROR}); build it with `pip install -e .` (or `make setup`) in the repository"
        )
    return _contours


def iou_curves(
    scoremap: np.ndarray, gt_boxes_xyxy: np.ndarray, thresholds: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(V1, V2): two (T,) float64 curves of the best IoU with any GT box at each CAM threshold, for the
    largest-contour box (V1, MaxBoxAcc) and over all contour boxes (V2, MaxBoxAccV2), in one pass.

    scoremap (H, W) float in [0, 1]; gt_boxes_xyxy (K, 4) x0y0x1y1 in the score map's frame.
    Identical to ``max_iou_curve_reference`` for both modes.
    """
    gt = validate_boxes(gt_boxes_xyxy)
    q = quantize_scoremap(scoremap)
    thr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    empty_iou = float(box_iou_plus1(_EMPTY_BOX, gt).max())
    if q.size == 0:
        full = np.full(thr.shape, empty_iou)
        return full, full.copy()
    cuts = threshold_cuts(int(q.max()), thr)
    levels, index = _distinct_mask_levels(q, cuts)
    v1 = np.full(thr.shape, empty_iou)
    v2 = np.full(thr.shape, empty_iou)
    if levels.size == 0:
        return v1, v2
    height, width = q.shape
    raw = _follower().level_ious(np.ascontiguousarray(q), height, width, levels, np.ascontiguousarray(gt))
    per_level = np.frombuffer(raw, dtype=np.float64).reshape(-1, 3)
    v1_level, v2_level = per_level[:, 0].copy(), per_level[:, 1]
    # A tie for the largest area between boxes that score differently: the reference keeps the first in
    # OpenCV's order, which the follower does not reproduce, so those (rare) masks are traced by OpenCV itself.
    for m in np.flatnonzero(per_level[:, 2]):
        _, binary = cv2.threshold(q, int(levels[m]) - 1, 255, cv2.THRESH_BINARY)
        v1_level[m] = box_iou_plus1(_boxes_from_binary(binary, multi_contour=False), gt).max()
    hit = index >= 0
    v1[hit] = v1_level[index[hit]]
    v2[hit] = v2_level[index[hit]]
    return v1, v2


def max_iou_curve(
    scoremap: np.ndarray, gt_boxes_xyxy: np.ndarray, thresholds: Sequence[float] | np.ndarray, multi_contour: bool
) -> np.ndarray:
    """(T,) float64 best IoU with any GT box per threshold: V1 (largest contour) or V2 (all contours).
    Fast; identical to ``max_iou_curve_reference``."""
    v1, v2 = iou_curves(scoremap, gt_boxes_xyxy, thresholds)
    return v2 if multi_contour else v1


def _curves_chunk(args: tuple[np.ndarray, list[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    scoremaps, gts, thr = args
    cv2.setNumThreads(1)
    out1 = np.empty((len(gts), thr.size))
    out2 = np.empty((len(gts), thr.size))
    for i, (s, g) in enumerate(zip(scoremaps, gts)):
        out1[i], out2[i] = iou_curves(s, g, thr)
    return out1, out2


def curves_for_batch(
    scoremaps: np.ndarray | Sequence[np.ndarray],
    gt_boxes: Sequence[np.ndarray],
    thresholds: Sequence[float] | np.ndarray,
    workers: int = 1,
    pool: ProcessPoolExecutor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(V1, V2) IoU curves, each (N, T) float64, for N score maps (N, H, W) and their GT boxes
    (a list of (K_i, 4) x0y0x1y1 arrays).

    workers > 1 splits the images over that many processes (a new pool per call unless ``pool`` is given;
    pass a long-lived pool when calling per batch). workers <= 0 means os.cpu_count(). Results are in input
    order and identical to the serial computation.
    """
    if len(scoremaps) != len(gt_boxes):
        raise ValueError(f"got {len(scoremaps)} score maps but {len(gt_boxes)} GT box arrays")
    thr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    n = len(scoremaps)
    if workers <= 0:
        workers = os.cpu_count() or 1
    if pool is None and (workers == 1 or n < 2):
        return _curves_chunk((list(scoremaps), list(gt_boxes), thr))
    n_chunks = min(n, 4 * max(workers, os.cpu_count() or 1 if pool is not None else 1))
    bounds = np.linspace(0, n, n_chunks + 1).astype(int)
    jobs = [
        ([np.asarray(s) for s in scoremaps[a:b]], [np.asarray(g) for g in gt_boxes[a:b]], thr)
        for a, b in zip(bounds[:-1], bounds[1:])
        if b > a
    ]
    if pool is not None:
        parts = list(pool.map(_curves_chunk, jobs))
    else:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            parts = list(ex.map(_curves_chunk, jobs))
    if not parts:
        return np.empty((0, thr.size)), np.empty((0, thr.size))
    return (np.concatenate([p[0] for p in parts], axis=0), np.concatenate([p[1] for p in parts], axis=0))
