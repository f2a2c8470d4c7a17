"""WSOL evaluators: BoxAcc curves (MaxBoxAcc, MaxBoxAccV2), the paper's fixed-threshold localization, PxAP.

Semantics follow clovaai/wsolevaluation's evaluation.py (BoxEvaluator, MaskEvaluator); the differences
(one pass for V1 and V2, mergeable integer counts, the CAM paper's fixed-threshold top-1 / GT-known
localization) are additions, not changes. docs/wsol_protocol.md lists every choice.

Both evaluators follow reset() / accumulate(...) / compute() -> dict, and expose their state as integer
count arrays (``state_dict``) that add up across processes (``merge``), so a torchrun evaluation can
all-reduce them and get exactly the single-process result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

from .boxes import RESIZE_LENGTH, cam_thresholds, curves_for_batch, validate_scoremap

logger = logging.getLogger(__name__)

DEFAULT_IOU_THRESHOLDS = (30, 50, 70)
# The CAM paper (Zhou et al. 2016) keeps "the regions of which the value is above 20% of the max value of
# the CAM" and boxes the largest connected component; the CutMix paper follows that protocol.
PAPER_CAM_THRESHOLD = 0.2
PAPER_IOU_THRESHOLD = 50


def _check_counts(name: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(
            f"state '{name}' has shape {arr.shape}; this evaluator expects {shape} "
            "(was it built with another cam_curve_interval or IoU list?)"
        )
    return arr.astype(np.int64)


class _Counts:
    """Integer counts that add up across processes: the attributes named in COUNTS, each an int or an int64
    array; their state_dict / load_state_dict / merge."""

    COUNTS: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every count as an int64 array; summing these across processes gives the merged evaluator."""
        out = {}
        for k in self.COUNTS:
            v = getattr(self, k)
            out[k] = v.copy() if isinstance(v, np.ndarray) else np.array([v], dtype=np.int64)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Replace the counts with ``state`` (e.g. after an all-reduce of ``state_dict()``)."""
        shapes = {k: v.shape for k, v in self.state_dict().items()}
        missing = set(shapes) - set(state)
        if missing:
            raise ValueError(f"state is missing {sorted(missing)}")
        for k, shape in shapes.items():
            arr = _check_counts(k, state[k], shape)
            setattr(self, k, arr if isinstance(getattr(self, k), np.ndarray) else int(arr[0]))

    def merge(self, other: _Counts | dict[str, np.ndarray]) -> None:
        """Add another evaluator's (or another process's ``state_dict()``) counts to this one."""
        state = other if isinstance(other, dict) else other.state_dict()
        mine = self.state_dict()
        self.load_state_dict({k: mine[k] + _check_counts(k, state[k], mine[k].shape) for k in mine})


class BoxEvaluator(_Counts):
    """BoxAcc over CAM thresholds for V1 (largest contour) and V2 (all contours) at several IoU thresholds.

    MaxBoxAcc = max over thresholds of the V1 BoxAcc at IoU 0.5 (wsolevaluation's default metric);
    MaxBoxAccV2 = mean over ``iou_thresholds`` of the max over thresholds of the V2 BoxAcc (each IoU picks
    its own best threshold, as the reference's ``np.average`` of per-IoU maxima). One threshold serves the
    whole dataset. An image counts as correct at a threshold when any predicted box reaches the IoU with any
    GT box. Also: top-1 classification, and the CAM paper's fixed-threshold GT-known / top-1 localization
    (V1 box at ``fixed_threshold``, IoU >= ``fixed_iou``/100). Percentages, as the reference reports.
    """

    COUNTS = (
        "num_images",
        "num_correct_v1",
        "num_correct_v2",
        "num_top1_loc_v1",
        "num_cls_known",
        "num_top1_cls",
        "num_gt_known_fixed",
        "num_top1_loc_fixed",
    )

    def __init__(
        self,
        iou_thresholds: Sequence[int] = DEFAULT_IOU_THRESHOLDS,
        cam_curve_interval: float = 0.01,
        fixed_threshold: float = PAPER_CAM_THRESHOLD,
        fixed_iou: int = PAPER_IOU_THRESHOLD,
        workers: int = 1,
    ) -> None:
        ious = [int(i) for i in iou_thresholds]
        if not ious or any(not 0 < i <= 100 for i in ious) or len(set(ious)) != len(ious):
            raise ValueError(f"iou_thresholds must be distinct percentages in (0, 100]; got {list(iou_thresholds)}")
        if 50 not in ious:
            raise ValueError(f"iou_thresholds must include 50 (MaxBoxAcc is defined at IoU 0.5); got {ious}")
        if not 0.0 <= fixed_threshold <= 1.0:
            raise ValueError(f"fixed_threshold must be in [0, 1]; got {fixed_threshold}")
        self.iou_thresholds = tuple(ious)
        self.cam_curve_interval = float(cam_curve_interval)
        self.thresholds = cam_thresholds(cam_curve_interval)
        self.fixed_threshold = float(fixed_threshold)
        self.fixed_iou = int(fixed_iou)
        self.workers = int(workers)
        # the curve thresholds plus the fixed one, scored together in one pass
        self.score_thresholds = np.append(self.thresholds, self.fixed_threshold)
        self.reset()

    # -- state ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Zero every count."""
        n_iou, n_thr = len(self.iou_thresholds), self.thresholds.size
        self.num_images = 0
        self.num_correct_v1 = np.zeros((n_iou, n_thr), dtype=np.int64)  # [iou, threshold]
        self.num_correct_v2 = np.zeros((n_iou, n_thr), dtype=np.int64)
        self.num_top1_loc_v1 = np.zeros((n_iou, n_thr), dtype=np.int64)  # class correct AND V1 IoU >= iou
        self.num_cls_known = 0  # images whose classification correctness was given
        self.num_top1_cls = 0
        self.num_gt_known_fixed = 0  # V1 IoU at fixed_threshold >= fixed_iou
        self.num_top1_loc_fixed = 0  # ... and class correct

    # -- accumulation -----------------------------------------------------------------------------------
    def accumulate(
        self,
        scoremaps: np.ndarray | Sequence[np.ndarray],
        gt_boxes: Sequence[np.ndarray],
        cls_correct: Sequence[bool] | np.ndarray | None = None,
        pool: ProcessPoolExecutor | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score a batch: scoremaps (B, H, W) float in [0, 1] (the GT-class CAMs, resized and normalised),
        gt_boxes a list of (K_i, 4) x0y0x1y1 boxes in the score-map frame, cls_correct (B,) whether the
        top-1 prediction equals the label (None: classification not scored). Returns the (V1, V2) IoU curves,
        each (B, T) over ``self.thresholds``, for per-image reporting."""
        ious = curves_for_batch(scoremaps, gt_boxes, self.score_thresholds, workers=self.workers, pool=pool)
        v1, v2 = ious
        self.accumulate_curves(v1[:, :-1], v2[:, :-1], v1[:, -1], cls_correct)
        return v1[:, :-1], v2[:, :-1]

    def accumulate_curves(
        self,
        v1: np.ndarray,
        v2: np.ndarray,
        fixed_v1: np.ndarray | Sequence[float],
        cls_correct: Sequence[bool] | np.ndarray | None = None,
    ) -> None:
        """Add precomputed curves: v1, v2 (B, T) best IoU per threshold (boxes.iou_curves over
        ``self.thresholds``), fixed_v1 (B,) V1 IoU at ``fixed_threshold``, cls_correct (B,) bool or None."""
        v1 = np.asarray(v1, dtype=np.float64)
        v2 = np.asarray(v2, dtype=np.float64)
        if v1.ndim == 1:
            v1, v2 = v1[None], v2[None]
        fixed_v1 = np.asarray(fixed_v1, dtype=np.float64).reshape(-1)
        n = v1.shape[0]
        if v1.shape != (n, self.thresholds.size) or v2.shape != v1.shape or fixed_v1.shape != (n,):
            raise ValueError(
                f"curves must be (B, {self.thresholds.size}) and fixed_v1 (B,); "
                f"got v1 {v1.shape}, "
                f"v2 {v2.shape}, fixed_v1 {fixed_v1.shape}"
            )
        if cls_correct is not None:
            correct = np.asarray(cls_correct, dtype=bool).reshape(-1)
            if correct.shape != (n,):
                raise ValueError(f"cls_correct must have shape ({n},); got {correct.shape}")
        for k, iou in enumerate(self.iou_thresholds):
            cut = iou / 100  # the reference compares IoU >= (_THRESHOLD / 100)
            hit1 = v1 >= cut
            self.num_correct_v1[k] += hit1.sum(axis=0)
            self.num_correct_v2[k] += (v2 >= cut).sum(axis=0)
            if cls_correct is not None:
                self.num_top1_loc_v1[k] += (hit1 & correct[:, None]).sum(axis=0)
        fixed_hit = fixed_v1 >= self.fixed_iou / 100
        self.num_gt_known_fixed += int(fixed_hit.sum())
        if cls_correct is not None:
            self.num_cls_known += n
            self.num_top1_cls += int(correct.sum())
            self.num_top1_loc_fixed += int((fixed_hit & correct).sum())
        self.num_images += n

    # -- results ----------------------------------------------------------------------------------------
    def compute(self) -> dict[str, float | list | None]:
        """Percentages: maxboxacc (V1, IoU 50) and maxboxacc_v2 (mean over IoUs), their best thresholds,
        per-IoU values and BoxAcc curves, gt_known_loc / top1_loc at the fixed threshold, top1_cls, and
        top1_loc at the best V1 threshold. Classification-dependent entries are None when never given."""
        if self.num_images == 0:
            raise ValueError("BoxEvaluator.compute() called before any image was accumulated (empty split?)")
        n = float(self.num_images)
        thr = self.thresholds
        out: dict[str, float | list | None] = {
            "num_images": self.num_images,
            "thresholds": thr.tolist(),
            "cam_curve_interval": self.cam_curve_interval,
            "iou_thresholds": list(self.iou_thresholds),
        }
        v2_max = []
        for k, iou in enumerate(self.iou_thresholds):
            acc1 = self.num_correct_v1[k] * 100.0 / n
            acc2 = self.num_correct_v2[k] * 100.0 / n
            b1, b2 = int(acc1.argmax()), int(acc2.argmax())  # first best threshold on ties
            out[f"boxacc_v1_iou{iou}"] = acc1.tolist()
            out[f"boxacc_v2_iou{iou}"] = acc2.tolist()
            out[f"maxboxacc_v1_iou{iou}"] = float(acc1[b1])
            out[f"best_threshold_v1_iou{iou}"] = float(thr[b1])
            out[f"maxboxacc_v2_iou{iou}"] = float(acc2[b2])
            out[f"best_threshold_v2_iou{iou}"] = float(thr[b2])
            v2_max.append(float(acc2[b2]))
        k50 = self.iou_thresholds.index(50)
        out["maxboxacc"] = out["maxboxacc_v1_iou50"]
        out["maxboxacc_best_threshold"] = out["best_threshold_v1_iou50"]
        out["maxboxacc_v2"] = float(np.mean(v2_max))
        out["gt_known_loc"] = self.num_gt_known_fixed * 100.0 / n
        out["fixed_threshold"] = self.fixed_threshold
        out["fixed_iou"] = self.fixed_iou
        if self.num_cls_known:
            if self.num_cls_known != self.num_images:
                raise ValueError(
                    f"classification correctness was given for {self.num_cls_known} of "
                    f"{self.num_images} images; give it for all or none"
                )
            out["top1_cls"] = self.num_top1_cls * 100.0 / n
            out["top1_loc"] = self.num_top1_loc_fixed * 100.0 / n
            best = int(self.num_correct_v1[k50].argmax())
            out["top1_loc_at_best_threshold"] = float(self.num_top1_loc_v1[k50][best] * 100.0 / n)
            for k, iou in enumerate(self.iou_thresholds):
                out[f"top1_loc_v1_iou{iou}"] = (self.num_top1_loc_v1[k] * 100.0 / n).tolist()
        else:
            out["top1_cls"] = None
            out["top1_loc"] = None
            out["top1_loc_at_best_threshold"] = None
        return out


def resize_mask(mask: np.ndarray, size: tuple[int, int] = (RESIZE_LENGTH, RESIZE_LENGTH)) -> np.ndarray:
    """(h, w) mask image (e.g. grayscale uint8 0/255) -> (H, W) bool, as wsolevaluation's load_mask_image +
    ``> 0.5``: float32, cv2.resize INTER_NEAREST to size (width, height), then foreground = value > 0.5."""
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (h, w); got shape {m.shape}")
    return cv2.resize(m, tuple(size), interpolation=cv2.INTER_NEAREST) > 0.5


class MaskEvaluator(_Counts):
    """PxAP: area under the pixel precision-recall curve, from score histograms over the CAM thresholds.

    As wsolevaluation's MaskEvaluator: with thresholds [0, bw, ..., 1 - bw] the bins are [0, bw), ...,
    [1 - bw, 1), [1, 2), [2, 3]; the counts of foreground (GT mask) and background pixels per bin are summed
    over the dataset; tp/fp at "score >= edge" are reverse cumulative sums; PxAP = 100 * sum_k P_k (R_k -
    R_{k-1}) over the points where tp + fp > 0. Pixels in an ignore region (minus foreground) are skipped.
    """

    COUNTS = ("num_images", "gt_true_hist", "gt_false_hist")

    def __init__(self, cam_curve_interval: float = 0.01) -> None:
        self.cam_curve_interval = float(cam_curve_interval)
        self.thresholds = cam_thresholds(cam_curve_interval)
        self.bin_edges = np.append(self.thresholds, [1.0, 2.0, 3.0])
        self.reset()

    def reset(self) -> None:
        """Zero the histograms."""
        self.num_images = 0
        self.gt_true_hist = np.zeros(self.thresholds.size + 2, dtype=np.int64)
        self.gt_false_hist = np.zeros(self.thresholds.size + 2, dtype=np.int64)

    def accumulate(
        self,
        scoremaps: np.ndarray | Sequence[np.ndarray],
        gt_masks: np.ndarray | Sequence[np.ndarray],
        ignore_masks: np.ndarray | Sequence[np.ndarray | None] | None = None,
    ) -> None:
        """scoremaps (B, H, W) float in [0, 1]; gt_masks (B, H, W) bool foreground (see ``resize_mask``);
        ignore_masks (B, H, W) bool or None: pixels there that are not foreground are not scored."""
        if len(scoremaps) != len(gt_masks):
            raise ValueError(f"got {len(scoremaps)} score maps but {len(gt_masks)} masks")
        for i, (scoremap, mask) in enumerate(zip(scoremaps, gt_masks)):
            s = validate_scoremap(np.asarray(scoremap)).astype(np.float64)
            fg = np.asarray(mask, dtype=bool)
            if fg.shape != s.shape:
                raise ValueError(f"mask {i} has shape {fg.shape} but its score map {s.shape}")
            bg = ~fg
            ignore = None if ignore_masks is None else ignore_masks[i]
            if ignore is not None:
                bg &= ~np.asarray(ignore, dtype=bool)
            self.gt_true_hist += np.histogram(s[fg], bins=self.bin_edges)[0]
            self.gt_false_hist += np.histogram(s[bg], bins=self.bin_edges)[0]
            self.num_images += 1

    def pr_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(thresholds, precision, recall) for "score >= threshold", thresholds descending from 2.0 to 0;
        precision is NaN where nothing is predicted positive."""
        num_true = self.gt_true_hist.sum()
        if num_true <= 0:
            raise ValueError("PxAP needs at least one foreground mask pixel; every mask was empty")
        tp = self.gt_true_hist[::-1].cumsum().astype(np.float64)
        fp = self.gt_false_hist[::-1].cumsum().astype(np.float64)
        pos = tp + fp
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(pos > 0, tp / np.where(pos > 0, pos, 1.0), np.nan)
        recall = tp / float(num_true)
        return self.bin_edges[-2::-1].copy(), precision, recall

    def compute(self) -> dict[str, float | list]:
        """pxap (percent) and the precision/recall points it integrates."""
        if self.num_images == 0:
            raise ValueError("MaskEvaluator.compute() called before any image was accumulated")
        edges, precision, recall = self.pr_curve()
        valid = ~np.isnan(precision[1:])
        pxap = float((np.nan_to_num(precision[1:]) * np.diff(recall))[valid].sum() * 100.0)
        return {
            "pxap": pxap,
            "num_images": self.num_images,
            "pr_thresholds": edges.tolist(),
            "precision": [None if np.isnan(p) else float(p) for p in precision],
            "recall": recall.tolist(),
        }
