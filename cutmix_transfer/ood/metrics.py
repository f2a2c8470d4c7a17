"""OOD detection metrics from scikit-learn, in-distribution as the positive class (docs/ood_protocol.md).

Given the scores of in-distribution images and of one OOD set (higher = more in-distribution):
- ``tnr_at_tpr95``: 1 - FPR at the first point of ``roc_curve(y, s, drop_intermediate=False)`` whose TPR reaches
  0.95 (TNR at 95% TPR; ODIN's "FPR at TPR 95%" is 100 minus it);
- ``auroc``: ``roc_auc_score(y, s)``;
- ``detection_acc``: ODIN's detection accuracy, the best over the ROC points of 0.5 * (TPR + TNR);
- ``aupr_in`` / ``aupr_out``: ``average_precision_score`` with in- (scores s) or out-of-distribution (scores -s)
  as the positive class.
All are percentages. Tied scores form one threshold (a point of the curve), as scikit-learn groups them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

METRICS = ("tnr_at_tpr95", "auroc", "detection_acc", "aupr_in", "aupr_out")
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


def roc_points(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) of every distinct score, in-distribution positive: roc_curve(drop_intermediate=False)."""
    y, s = _labels_and_scores(scores_in, scores_out)
    return roc_curve(y, s, drop_intermediate=False)


def ood_metrics(scores_in: np.ndarray, scores_out: np.ndarray, tpr_level: float = TPR_LEVEL) -> dict[str, float]:
    """The five metrics (percent) of one OOD set against the in-distribution scores; see the module docstring."""
    y, s = _labels_and_scores(scores_in, scores_out)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    first = int(np.argmax(tpr >= tpr_level))  # tpr ends at 1.0, so some point always reaches the level
    return {
        "tnr_at_tpr95": 100.0 * float(1.0 - fpr[first]),
        "auroc": 100.0 * float(roc_auc_score(y, s)),
        "detection_acc": 100.0 * float(np.max(0.5 * (tpr + 1.0 - fpr))),
        "aupr_in": 100.0 * float(average_precision_score(y, s)),
        "aupr_out": 100.0 * float(average_precision_score(1 - y, -s)),
    }


def mean_metrics(per_set: Mapping[str, Mapping[str, float]], names: Sequence[str] = METRICS) -> dict[str, float]:
    """The unweighted mean of each metric over the OOD sets (Table 12 of the CutMix paper averages the sets)."""
    if not per_set:
        raise ValueError("no OOD set to average")
    return {k: float(np.mean([float(m[k]) for m in per_set.values()])) for k in names}
