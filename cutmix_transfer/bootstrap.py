"""Bootstrap over images: 95% percentile intervals and paired differences for the report's numbers.

A resample draws n images with replacement from the n evaluated ones; it is held as a count vector w (how many
times each image was drawn), so B resamples are one (B, n) matrix and a statistic maps it to B values at once.
Corpus-level metrics are recomputed on every resample from per-image quantities, never averaged per image:

- `mean_statistic`: the mean of a per-image value (top-1 error, top-1 loc, GT-known loc, FGSM top-1, and the
  captioning scores whose corpus value is a per-image mean: CIDEr-D with the idf of the full test set, ROUGE-L);
- `max_over_thresholds_statistic`: MaxBoxAcc / MaxBoxAccV2 from per-image, per-threshold hits (the CAM threshold
  is re-chosen on each resample, as the metric chooses it dataset-wide);
- `VOCMapStatistic`: VOC mAP from per-image detections: the true / false positive flags are mmdet's own
  `tpfp_default` per image (matching is per image, so a resample only re-weights them), and the AP is mmdet's
  `average_precision` on the re-weighted precision / recall curve (equal to `eval_map` on the resampled images);
- `caption_stats.corpus_statistic`: BLEU-1..4 and METEOR from per-image sufficient statistics (n-gram counts and
  lengths; the METEOR jar's alignment statistics), re-summed with the counts and scored as pycocoevalcap scores
  the corpus (equal to its score on the resampled images).

Stratified resampling: a statistic with a `strata` attribute ((n,) labels) is resampled within each stratum,
each keeping its size (the OOD metrics: the in-distribution images and each OOD set, so every resample has the
evaluated set sizes, as the usual bootstrap of AUROC does; a pooled draw would also vary how many images of each
set a resample holds). The strata are taken in the order of their first image, so the same ids and partition give
the same draws whatever the labels.

Paired differences use the same count matrix for both checkpoints (same images, same draws); the p-value is the
two-sided bootstrap p: 2 * min(P(d <= 0), P(d >= 0)), capped at 1. docs/report_statistics.md says which report
metric is resampled how.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

Statistic = Callable[[np.ndarray], np.ndarray]  # (B, n) counts -> (B,) values
DEFAULT_RESAMPLES = 1000
CONFIDENCE = 0.95


CHUNK_ELEMENTS = 20_000_000  # counts held at once (160 MB float64): ImageNet's 50,000 images -> 400 resamples


def _check_sizes(n: int, resamples: int) -> None:
    if n < 1 or resamples < 1:
        raise ValueError(f"need n >= 1 images and >= 1 resamples, got n={n}, resamples={resamples}")


def _strata_groups(n: int, strata: np.ndarray | None) -> list[np.ndarray] | None:
    """Each stratum's image indices, in order of their first image (None: no strata); what the draws depend on."""
    if strata is None:
        return None
    labels = np.asarray(strata).ravel()
    if labels.size != n:
        raise ValueError(f"strata must label each of the n={n} images, got {labels.size} labels")
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return [np.flatnonzero(inverse == g) for g in np.argsort(first)]


def _count_chunks(n: int, resamples: int, seed: int, groups: list[np.ndarray] | None):
    """The rows of `resample_counts(n, resamples, seed, strata)` in chunks of at most CHUNK_ELEMENTS counts; groups:
    the strata's `_strata_groups`."""
    rng = np.random.default_rng(seed)
    p = np.full(n, 1.0 / n)
    step = max(1, CHUNK_ELEMENTS // n)
    for start in range(0, resamples, step):
        size = min(step, resamples - start)
        if groups is None:
            yield rng.multinomial(n, p, size=size).astype(np.float64)
            continue
        w = np.empty((size, n), dtype=np.float64)
        for cols in groups:  # k draws among the stratum's k images: the multinomial's law, ~20x faster (measured)
            k = cols.size
            draws = rng.integers(0, k, size=(size, k)) + np.arange(0, size * k, k)[:, None]
            w[:, cols] = np.bincount(draws.ravel(), minlength=size * k).reshape(size, k)
        yield w


def resample_counts(n: int, resamples: int, seed: int = 0, strata: np.ndarray | None = None) -> np.ndarray:
    """(resamples, n) float64 counts: row b says how often image i is drawn in resample b (each row sums to n;
    with strata (n,) labels, each stratum's images are drawn among themselves and its counts sum to its size)."""
    _check_sizes(n, resamples)
    return np.concatenate(list(_count_chunks(n, resamples, seed, _strata_groups(n, strata))))


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central `confidence` percentile interval of bootstrap values (linear interpolation, numpy default)."""
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(np.asarray(values, dtype=np.float64), [alpha, 1.0 - alpha])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Interval:
    """A point estimate on all images and its bootstrap percentile interval."""

    value: float
    low: float
    high: float
    n: int
    resamples: int


@dataclass(frozen=True)
class PairedDifference:
    """a - b on the same images: point difference, its bootstrap interval and two-sided p-value."""

    value: float
    low: float
    high: float
    p_value: float
    n: int
    resamples: int


def mean_statistic(per_image: Sequence[float] | np.ndarray) -> Statistic:
    """The weighted mean of a per-image value (e.g. 100 * correct): a mean metric recomputed on a resample."""
    x = np.asarray(per_image, dtype=np.float64)

    def stat(w: np.ndarray) -> np.ndarray:
        return (w @ x) / w.sum(axis=1)

    return stat


def max_over_thresholds_statistic(hits: np.ndarray, scale: float = 100.0) -> Statistic:
    """MaxBoxAcc(V2) from hits (n, T) or (n, K, T): K IoU levels, T CAM thresholds; max over T, mean over K."""
    h = np.asarray(hits, dtype=np.float64)
    if h.ndim == 2:
        h = h[:, None, :]
    n, k, t = h.shape
    flat = h.reshape(n, k * t)

    def stat(w: np.ndarray) -> np.ndarray:
        acc = (w @ flat).reshape(len(w), k, t) / w.sum(axis=1)[:, None, None]
        return scale * acc.max(axis=2).mean(axis=1)

    return stat


class VOCMapStatistic:
    """VOC mAP (percent) on resampled images from per-image detections and ground truth, with mmdet's functions.

    dets[i][c]: (m, 5) array x0 y0 x1 y1 score of image i, class c; gts[i]: {'bboxes', 'labels'[, 'bboxes_ignore',
    'labels_ignore']} as mmdet's eval_map takes them. Classes without ground truth on the whole set are left out
    of the mean (mmdet's VOC rule: eval_map averages over classes with ground truth).
    """

    def __init__(
        self,
        dets: Sequence[Sequence[np.ndarray]],
        gts: Sequence[dict],
        iou_thr: float = 0.5,
        eval_mode: str = "11points",
        use_legacy_coordinate: bool = True,
    ) -> None:
        # mmdet imported here, not at the top: the report and its tests load this module without detection
        # records, and importing mmdet costs ~2 s of the report's time (measured).
        from mmdet.evaluation.functional.mean_ap import average_precision, tpfp_default

        self._ap = average_precision
        self.eval_mode = eval_mode
        self.n = len(gts)
        num_classes = len(dets[0]) if dets else 0
        self.classes = []  # per class: (image index of each det sorted by score desc, tp, fp, per-image gt counts)
        for c in range(num_classes):
            img, score, tp, fp = [], [], [], []
            gt_count = np.zeros(self.n, dtype=np.float64)
            for i, (d, g) in enumerate(zip(dets, gts)):
                boxes = np.asarray(d[c], dtype=np.float32).reshape(-1, 5)
                labels = np.asarray(g["labels"])
                gt_b = np.asarray(g["bboxes"], dtype=np.float32).reshape(-1, 4)[labels == c]
                ign_l = np.asarray(g.get("labels_ignore", np.zeros(0)))
                ign_b = np.asarray(g.get("bboxes_ignore", np.zeros((0, 4))), dtype=np.float32).reshape(-1, 4)
                ign_b = ign_b[ign_l == c]
                gt_count[i] = len(gt_b)
                if len(boxes) == 0:
                    continue
                t, f = tpfp_default(boxes, gt_b, ign_b, iou_thr=iou_thr, use_legacy_coordinate=use_legacy_coordinate)
                img.append(np.full(len(boxes), i))
                score.append(boxes[:, 4])
                tp.append(t[0])
                fp.append(f[0])
            if gt_count.sum() == 0:
                continue
            if img:
                img_a, score_a = np.concatenate(img), np.concatenate(score)
                order = np.argsort(-score_a, kind="stable")
                self.classes.append((img_a[order], np.concatenate(tp)[order], np.concatenate(fp)[order], gt_count))
            else:
                self.classes.append((np.zeros(0, dtype=int), np.zeros(0), np.zeros(0), gt_count))

    def __call__(self, w: np.ndarray) -> np.ndarray:
        """mAP (percent) for each row of counts w (B, n)."""
        out = np.zeros(len(w), dtype=np.float64)
        for b, wb in enumerate(w):
            aps, used = 0.0, 0
            for img, tp, fp, gt_count in self.classes:
                num_gts = float(wb @ gt_count)
                if num_gts == 0:
                    continue  # eval_map: a class without ground truth in the (resampled) set is not averaged
                dw = wb[img]
                tp_c, fp_c = np.cumsum(tp * dw), np.cumsum(fp * dw)
                keep = dw > 0
                tp_c, fp_c = tp_c[keep], fp_c[keep]
                eps = np.finfo(np.float32).eps
                recall = tp_c / max(num_gts, 1.0)
                precision = tp_c / np.maximum(tp_c + fp_c, eps)
                aps += float(self._ap(recall, precision, self.eval_mode)) if len(recall) else 0.0
                used += 1
            out[b] = 100.0 * aps / used if used else 0.0
        return out


def bootstrap_values(
    stat: Statistic, n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float, np.ndarray]:
    """The statistic on all n images and on each of `resamples` seeded resamples (same seed, n and strata: same
    draws); stratified when the statistic has a `strata` attribute (see the module docstring)."""
    return shared_bootstrap_values([(stat, n)], resamples, seed)[0]


def shared_bootstrap_values(
    stats: Sequence[tuple[Statistic, int]], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> list[tuple[float, np.ndarray]]:
    """`bootstrap_values` of each (statistic, n), the counts drawn once for all statistics with the same n and
    strata (they get the same draws anyway): the drawing is the cost (1,000 resamples of 50,000 images: about 8 s,
    a mean statistic on them 0.1 s; measured)."""
    draws: dict[tuple, tuple[int, list[np.ndarray] | None, list[int]]] = {}  # key -> (n, strata groups, stats)
    for k, (stat, n) in enumerate(stats):
        _check_sizes(n, resamples)
        groups = _strata_groups(n, getattr(stat, "strata", None))
        key = (n, None if groups is None else tuple(g.tobytes() for g in groups))
        draws.setdefault(key, (n, groups, []))[2].append(k)
    values: list[list[np.ndarray]] = [[] for _ in stats]
    for n, groups, ks in draws.values():
        for w in _count_chunks(n, resamples, seed, groups):
            for k in ks:
                values[k].append(stats[k][0](w))
    return [(float(stat(np.ones((1, n)))[0]), np.concatenate(v)) for (stat, n), v in zip(stats, values)]


def bootstrap_interval(
    stat: Statistic, n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Interval:
    """The statistic on all n images and its percentile interval over `resamples` seeded resamples."""
    value, values = bootstrap_values(stat, n, resamples, seed)
    lo, hi = percentile_interval(values, confidence)
    return Interval(value, lo, hi, n, resamples)


def difference_from_values(
    value_a: float, values_a: np.ndarray, value_b: float, values_b: np.ndarray, n: int, confidence: float = CONFIDENCE
) -> PairedDifference:
    """a - b from both statistics' values on the SAME resamples: interval and two-sided bootstrap p-value."""
    d = np.asarray(values_a) - np.asarray(values_b)
    lo, hi = percentile_interval(d, confidence)
    p = min(1.0, 2.0 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return PairedDifference(value_a - value_b, lo, hi, p, n, len(d))


def paired_difference(
    stat_a: Statistic,
    stat_b: Statistic,
    n: int,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> PairedDifference:
    """a - b on the same n images (aligned order), resampled together; interval and two-sided bootstrap p."""
    value_a, values_a = bootstrap_values(stat_a, n, resamples, seed)
    value_b, values_b = bootstrap_values(stat_b, n, resamples, seed)
    return difference_from_values(value_a, values_a, value_b, values_b, n, confidence)
