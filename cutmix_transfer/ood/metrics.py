"""OOD detection metrics, in-distribution as the positive class (docs/ood_protocol.md).

Given the scores of in-distribution images and of one OOD set (higher = more in-distribution):
- ``tnr_at_tpr95``: 1 - FPR at the first point of the ROC curve (every distinct score a point, as scikit-learn's
  ``roc_curve(y, s, drop_intermediate=False)``) whose TPR reaches 0.95 (TNR at 95% TPR; ODIN's "FPR at TPR 95%"
  is 100 minus it);
- ``auroc``: the area under that curve (``roc_auc_score(y, s)``: pairs won, a tied pair counting one half);
- ``detection_acc``: ODIN's detection accuracy, the best over the ROC points of 0.5 * (TPR + TNR);
- ``aupr_in`` / ``aupr_out``: scikit-learn's ``average_precision_score`` with in- (scores s) or out-of-distribution
  (scores -s) as the positive class.
All are percentages. Tied scores form one threshold (a point of the curve), as scikit-learn groups them.

Published OOD numbers depend on the code that computed them; `metrics_as` gives the same five numbers as
(docs/ood_protocol.md, section 4):
- 'exact' (default): the definitions above;
- 'odin': facebookresearch/odin's code/calMetric.py (its baseline, T = 1, branch), on its fixed threshold grid
  delta = np.arange(start, 1, (1 - start) / 100000), start 0.01 (CIFAR-100) or 0.1 (CIFAR-10) (`odin_metrics`);
- 'lee': pokaxpoka/deep_Mahalanobis_detector's calculate_log.py, whose metric names (TNR at TPR 95%, AUROC,
  detection accuracy) the CutMix paper uses (`lee_metrics`).
Both reference codes were written for softmax scores in [0, 1].

The three ROC metrics have one implementation, `RocCurve`, which also takes image weights (an image of weight k
counts k times), many weight rows at once: the report's bootstrap recomputes them on resampled images with it
(`MeanOverSetsStatistic`, docs/report_statistics.md). tests/test_ood.py checks it against scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

METRICS = ("tnr_at_tpr95", "auroc", "detection_acc", "aupr_in", "aupr_out")
ROC_METRICS = ("tnr_at_tpr95", "auroc", "detection_acc")  # from the ROC curve: weighted / resampled by RocCurve
TPR_LEVEL = 0.95


def _labels_and_scores(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, s): y = 1 for the in-distribution images, then 0 for the OOD ones; s their scores, float64."""
    s_in = np.asarray(scores_in, dtype=np.float64).ravel()
    s_out = np.asarray(scores_out, dtype=np.float64).ravel()
    if s_in.size == 0 or s_out.size == 0:
        raise ValueError(
            f"OOD metrics need scores on both sides, got {s_in.size} in- and {s_out.size} out-of-distribution scores"
        )
    if not (np.isfinite(s_in).all() and np.isfinite(s_out).all()):
        raise ValueError("OOD metrics need finite scores (NaN or inf found)")
    y = np.concatenate([np.ones(s_in.size, dtype=np.int64), np.zeros(s_out.size, dtype=np.int64)])
    return y, np.concatenate([s_in, s_out])


class RocCurve:
    """The ROC curve of in- vs out-of-distribution scores at every distinct score, for rows of image weights.

    The scores are sorted once; `counts` then gives, for B weight rows at a time, the weight of in- (tp) and
    out-of-distribution (fp) images scoring >= each threshold, by cumulative sums over the sorted images read at
    the end of each group of tied scores. Images of weight 0 only repeat the previous point, which changes none
    of the ROC metrics; so integer weights give exactly the curve of the explicitly duplicated scores.
    """

    def __init__(self, scores_in: np.ndarray, scores_out: np.ndarray) -> None:
        y, s = _labels_and_scores(scores_in, scores_out)
        self.n = int(s.size)
        self.order = np.argsort(-s, kind="stable")
        s_sorted = s[self.order]
        self._is_in = y[self.order].astype(bool)
        self._ends = np.append(np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s.size - 1)  # last of each tie group
        self.thresholds = np.concatenate([[np.inf], s_sorted[self._ends]])

    def counts(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(tp, fp), each (B, T + 1): weights (B, n_in + n_out), in-distribution images first, each set in the
        order given (None: every image once, B = 1); column 0 is the curve's origin (threshold +inf)."""
        w = np.ones((1, self.n)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != self.n:
            raise ValueError(f"weights must be (B, {self.n}) (in-distribution images first), got {w.shape}")
        return self.counts_sorted(w[:, self.order])

    def counts_sorted(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`counts` from weights already in the curve's sorted order (columns permuted by `self.order`)."""
        tp = np.cumsum(np.where(self._is_in, w, 0.0), axis=1)[:, self._ends]
        fp = np.cumsum(np.where(self._is_in, 0.0, w), axis=1)[:, self._ends]
        if not (tp[:, -1] > 0).all() or not (fp[:, -1] > 0).all():
            raise ValueError("OOD metrics need a positive total weight on both sides in every weight row")
        origin = np.zeros((len(w), 1))
        return np.hstack([origin, tp]), np.hstack([origin, fp])

    def rates(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(fpr, tpr), each (B, T + 1), as `roc_curve(y, s, sample_weight, drop_intermediate=False)` gives them."""
        tp, fp = self.counts(weights)
        return fp / fp[:, -1:], tp / tp[:, -1:]


def _tnr_at_tpr(tp: np.ndarray, fp: np.ndarray, tpr_level: float = TPR_LEVEL) -> np.ndarray:
    tpr, fpr = tp / tp[:, -1:], fp / fp[:, -1:]
    first = np.argmax(tpr >= tpr_level, axis=1)  # tpr ends at 1.0, so some point always reaches the level
    return 100.0 * (1.0 - fpr[np.arange(len(tp)), first])


def _auroc(tp: np.ndarray, fp: np.ndarray, tpr_level: float = TPR_LEVEL) -> np.ndarray:
    # Mann-Whitney on the weight counts (the trapezoid under the curve): each out-image is beaten by the in-weight
    # above its threshold and ties with half the in-weight at it; exact in float64 for integer weights
    won = np.sum(np.diff(fp, axis=1) * (tp[:, :-1] + 0.5 * np.diff(tp, axis=1)), axis=1)
    return 100.0 * won / (tp[:, -1] * fp[:, -1])


def _detection_acc(tp: np.ndarray, fp: np.ndarray, tpr_level: float = TPR_LEVEL) -> np.ndarray:
    return 100.0 * np.max(0.5 * (tp / tp[:, -1:] + 1.0 - fp / fp[:, -1:]), axis=1)


_ROC_METRIC_FNS: dict[str, Callable[..., np.ndarray]] = {
    "tnr_at_tpr95": _tnr_at_tpr,
    "auroc": _auroc,
    "detection_acc": _detection_acc,
}


def roc_metrics(
    curve: RocCurve, weights: np.ndarray | None = None, names: Sequence[str] = ROC_METRICS, tpr_level: float = TPR_LEVEL
) -> dict[str, np.ndarray]:
    """The ROC metrics (percent), each a (B,) array over the weight rows (see `RocCurve.counts`)."""
    tp, fp = curve.counts(weights)
    return {k: _ROC_METRIC_FNS[k](tp, fp, tpr_level) for k in names}


def weighted_ood_metrics(
    scores_in: np.ndarray,
    scores_out: np.ndarray,
    weights_in: np.ndarray,
    weights_out: np.ndarray,
    tpr_level: float = TPR_LEVEL,
) -> dict[str, np.ndarray]:
    """TNR@TPR95, AUROC and detection accuracy (percent) with image weights (B, n_in) / (B, n_out) -> (B,) each:
    an image of weight k counts k times (integer weights = `ood_metrics` on the duplicated scores)."""
    w_in, w_out = np.atleast_2d(weights_in), np.atleast_2d(weights_out)
    return roc_metrics(RocCurve(scores_in, scores_out), np.hstack([w_in, w_out]), tpr_level=tpr_level)


def roc_points(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) of every distinct score, in-distribution positive: roc_curve(drop_intermediate=False)."""
    curve = RocCurve(scores_in, scores_out)
    fpr, tpr = curve.rates()
    return fpr[0], tpr[0], curve.thresholds


def ood_metrics(scores_in: np.ndarray, scores_out: np.ndarray, tpr_level: float = TPR_LEVEL) -> dict[str, float]:
    """The five metrics (percent) of one OOD set against the in-distribution scores; see the module docstring."""
    # scikit-learn imported here, not at the top: its import costs ~1.05 s (measured, python -X importtime) and
    # the report imports this module for the bootstrap of the ROC metrics, which do not need it
    from sklearn.metrics import average_precision_score

    roc = {k: float(v[0]) for k, v in roc_metrics(RocCurve(scores_in, scores_out), tpr_level=tpr_level).items()}
    y, s = _labels_and_scores(scores_in, scores_out)
    return {
        **roc,
        "aupr_in": 100.0 * float(average_precision_score(y, s)),
        "aupr_out": 100.0 * float(average_precision_score(1 - y, -s)),
    }


class MeanOverSetsStatistic:
    """A ROC metric's mean over the OOD sets as a bootstrap statistic (bootstrap.Statistic) over all evaluated images.

    scores (n,), groups (n,): 0 = in-distribution image, g >= 1 = image of OOD set g. Called with (B, n) counts, it
    gives the (B,) means over the sets of the metric on the weighted in- vs weighted set-g scores (the same
    in-distribution weights for every set). `strata` (= groups) asks the bootstrap to resample the in-distribution
    images and each OOD set separately, each keeping its size (bootstrap.resample_counts).
    """

    def __init__(self, scores: np.ndarray, groups: np.ndarray, metric: str, tpr_level: float = TPR_LEVEL) -> None:
        if metric not in _ROC_METRIC_FNS:
            raise ValueError(f"no weighted OOD metric {metric!r}: choose one of {', '.join(ROC_METRICS)}")
        s, self.strata = np.asarray(scores, dtype=np.float64), np.asarray(groups, dtype=np.int64)
        if s.shape != self.strata.shape or s.ndim != 1:
            raise ValueError(f"scores {s.shape} and groups {self.strata.shape} must be (n,) alike")
        self._fn, self.tpr_level = _ROC_METRIC_FNS[metric], tpr_level
        self.scores, self.metric = s, metric  # for pooled()
        in_cols = np.flatnonzero(self.strata == 0)
        self._sets = []  # per OOD set: its curve and the columns of the counts in the curve's sorted order
        for g in np.unique(self.strata[self.strata != 0]):
            cols = np.concatenate([in_cols, np.flatnonzero(self.strata == g)])
            curve = RocCurve(s[in_cols], s[cols[in_cols.size :]])
            self._sets.append((curve, cols[curve.order]))
        if not self._sets:
            raise ValueError("no OOD set to average (every group is 0, the in-distribution)")

    def __call__(self, w: np.ndarray) -> np.ndarray:
        """(B,) mean over the sets of the metric (percent) for each row of counts w (B, n)."""
        w = np.asarray(w, dtype=np.float64)
        per_set = [self._fn(*curve.counts_sorted(w[:, cols]), self.tpr_level) for curve, cols in self._sets]
        return np.mean(per_set, axis=0)

    def pooled(self, other: MeanOverSetsStatistic) -> MeanOverSetsStatistic:
        """The statistic over both checkpoints' scores [self's, other's] on the same images (significance.py's
        swap test: counts [1 - s, s] give self's scores with other's on the images where s = 1)."""
        both = np.concatenate([self.scores, other.scores])
        return MeanOverSetsStatistic(both, np.concatenate([self.strata, other.strata]), self.metric, self.tpr_level)


def mean_metrics(per_set: Mapping[str, Mapping[str, float]], names: Sequence[str] = METRICS) -> dict[str, float]:
    """The unweighted mean of each metric over the OOD sets (Table 12 of the CutMix paper averages the sets)."""
    if not per_set:
        raise ValueError("no OOD set to average")
    return {k: float(np.mean([float(m[k]) for m in per_set.values()])) for k in names}


# ----------------------------------------------------------------------------------------------------------
# The metrics as the reference codes compute them
# ----------------------------------------------------------------------------------------------------------
METRICS_AS = ("exact", "odin", "lee")
ODIN_STEPS = 100_000
ODIN_GRID_START = {"cifar100": 0.01, "cifar10": 0.1}  # calMetric.py: name "CIFAR-100" / "CIFAR-10"


def _sequential_sum(terms: np.ndarray) -> float:
    """The left-to-right float64 sum of a Python loop `total += term` (numpy's sum adds pairwise)."""
    return float(np.add.accumulate(terms)[-1]) if terms.size else 0.0


def odin_grid(in_dataset: str) -> np.ndarray:
    """calMetric.py's thresholds: np.arange(start, 1, (1 - start) / 100000), start by the in-distribution set."""
    if in_dataset not in ODIN_GRID_START:
        raise ValueError(f"ODIN's grid is defined for {', '.join(ODIN_GRID_START)}, not {in_dataset!r}")
    start, end = ODIN_GRID_START[in_dataset], 1.0
    return np.arange(start, end, (end - start) / ODIN_STEPS)


def odin_metrics(scores_in: np.ndarray, scores_out: np.ndarray, in_dataset: str = "cifar100") -> dict[str, float]:
    """The five metrics (percent) as calMetric.py's baseline branch computes them on `odin_grid`:
    - FPR at TPR 95%: the mean over the grid points with 0.9495 <= TPR <= 0.9505 of FPR, TPR counting
      in-scores >= delta and FPR out-scores > delta; tnr_at_tpr95 = 100 - that (NaN when no grid point has such a
      TPR: calMetric.py divides by zero there);
    - AUROC: sum over the grid of (FPR_prev - FPR) * TPR (FPR_prev from 1), plus FPR * TPR at the last point;
    - detection error: min(1, min over the grid of (#in < delta / n_in + #out > delta / n_out) / 2);
      detection_acc = 100 - it;
    - AUPR-in: TP = #in >= delta / n_in, FP = #out >= delta / n_out, points with TP + FP = 0 skipped; sum of
      (recall_prev - TP) * precision (recall_prev from 1) plus recall * precision at the last point kept;
    - AUPR-out: the grid from 1 down (np.arange(1, start, -gap)), TP = #out < delta / n_out, FP = #in < delta / n_in,
      stopping at the first point with TP + FP = 0; the same sum.
    Sums run left to right as the reference's loops do."""
    x, y = np.sort(np.asarray(scores_in, dtype=np.float64)), np.sort(np.asarray(scores_out, dtype=np.float64))
    nx, ny = float(x.size), float(y.size)
    grid = odin_grid(in_dataset)

    def ge(a: np.ndarray, d: np.ndarray) -> np.ndarray:
        return a.size - np.searchsorted(a, d, side="left")

    def gt(a: np.ndarray, d: np.ndarray) -> np.ndarray:
        return a.size - np.searchsorted(a, d, side="right")

    def lt(a: np.ndarray, d: np.ndarray) -> np.ndarray:
        return np.searchsorted(a, d, side="left")

    tpr, fpr = ge(x, grid) / nx, gt(y, grid) / ny
    window = (tpr <= 0.9505) & (tpr >= 0.9495)
    fpr95 = _sequential_sum(fpr[window]) / window.sum() if window.any() else float("nan")
    fpr_prev = np.concatenate([[1.0], fpr[:-1]])
    auroc = _sequential_sum((-fpr + fpr_prev) * tpr) + fpr[-1] * tpr[-1]
    error = min(1.0, float(np.min((lt(x, grid) / nx + gt(y, grid) / ny) / 2.0)))

    def aupr(tp: np.ndarray, fp: np.ndarray) -> float:
        if not tp.size:
            return float("nan")  # the reference never sets recall / precision (a NameError there)
        precision = tp / (tp + fp)
        recall_prev = np.concatenate([[1.0], tp[:-1]])
        return _sequential_sum((recall_prev - tp) * precision) + tp[-1] * precision[-1]

    tp_in, fp_in = ge(x, grid) / nx, ge(y, grid) / ny
    kept = tp_in + fp_in != 0
    down = np.arange(1.0, grid[0], -(1.0 - grid[0]) / ODIN_STEPS)
    tp_out, fp_out = lt(y, down) / ny, lt(x, down) / nx
    zero = np.flatnonzero(tp_out + fp_out == 0)
    stop = int(zero[0]) if zero.size else down.size
    return {
        "tnr_at_tpr95": 100.0 * (1.0 - float(fpr95)),
        "auroc": 100.0 * float(auroc),
        "detection_acc": 100.0 * (1.0 - error),
        "aupr_in": 100.0 * float(aupr(tp_in[kept], fp_in[kept])),
        "aupr_out": 100.0 * float(aupr(tp_out[:stop], fp_out[:stop])),
    }


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """numpy's trapz(y, x): sum of (x[i+1] - x[i]) * (y[i+1] + y[i]) / 2."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def lee_metrics(scores_in: np.ndarray, scores_out: np.ndarray) -> dict[str, float]:
    """The five metrics (percent) as calculate_log.py computes them. Its curve removes one image at a time from
    the accepted set in ascending score order, an in-distribution image before an OOD one of the same score:
    tp / fp (length n_in + n_out + 1) count the images still accepted. Then TNR at the point whose TPR is nearest
    0.95 (the first such point), AUROC = -trapz(1 - FPR, TPR) and AUPR-in / -out by trapz over the padded curves
    ([1] + TPR + [0], precision padded with 0.5 / 0), detection accuracy = max of (TPR + 1 - FPR) / 2."""
    s_in, s_out = np.asarray(scores_in, dtype=np.float64).ravel(), np.asarray(scores_out, dtype=np.float64).ravel()
    nk, nn = s_in.size, s_out.size
    score = np.concatenate([s_in, s_out])
    novel = np.concatenate([np.zeros(nk, dtype=np.int64), np.ones(nn, dtype=np.int64)])
    order = np.lexsort((novel, score))  # ascending score; at a tie the in-distribution image goes first
    gone_novel = np.cumsum(novel[order])
    tp = np.concatenate([[nk], nk - (np.arange(1, nk + nn + 1) - gone_novel)])
    fp = np.concatenate([[nn], nn - gone_novel])
    tnr = 1.0 - fp[int(np.abs(tp / nk - 0.95).argmin())] / nn
    tpr = np.concatenate([[1.0], tp / tp[0], [0.0]])
    fpr = np.concatenate([[1.0], fp / fp[0], [0.0]])
    dtacc = 0.5 * float(np.max(tp / tp[0] + 1.0 - fp / fp[0]))
    denom = (tp + fp).astype(np.float64)
    denom[denom == 0] = -1.0
    pin_ind = np.concatenate([[True], denom > 0, [True]])
    pin = np.concatenate([[0.5], tp / denom, [0.0]])
    denom = (tp[0] - tp + fp[0] - fp).astype(np.float64)
    denom[denom == 0] = -1.0
    pout_ind = np.concatenate([[True], denom > 0, [True]])
    pout = np.concatenate([[0.0], (fp[0] - fp) / denom, [0.5]])
    return {
        "tnr_at_tpr95": 100.0 * float(tnr),
        "auroc": -100.0 * _trapezoid(1.0 - fpr, tpr),
        "detection_acc": 100.0 * dtacc,
        "aupr_in": -100.0 * _trapezoid(pin[pin_ind], tpr[pin_ind]),
        "aupr_out": 100.0 * _trapezoid(pout[pout_ind], 1.0 - fpr[pout_ind]),
    }


def metrics_as(
    code: str, scores_in: np.ndarray, scores_out: np.ndarray, in_dataset: str = "cifar100"
) -> dict[str, float]:
    """The five metrics (percent) of one OOD set as `code` ('exact', 'odin' or 'lee') computes them."""
    if code == "exact":
        return ood_metrics(scores_in, scores_out)
    _labels_and_scores(scores_in, scores_out)  # the same checks: both sides given, finite
    if code == "odin":
        return odin_metrics(scores_in, scores_out, in_dataset)
    if code == "lee":
        return lee_metrics(scores_in, scores_out)
    raise ValueError(f"metrics_as must be one of {METRICS_AS}, got {code!r}")
