"""The corruption-robustness numbers of Hendrycks & Dietterich (ICLR 2019), from a table of top-1 errors per
corruption x severity (docs/corruption_protocol.md cites each definition's source):

- E(s, c): top-1 error (percent) of the images of corruption c at severity s;
- CE_c = sum_s E(s, c) / sum_s E_AlexNet(s, c): with AlexNet's errors known only as their mean over the 5
  severities (ALEXNET_ERR), the sum of AlexNet's errors is 5 x that mean, so CE_c needs all 5 severities of c;
- mCE = the mean of CE_c over the 15 standard corruptions (AugMix's `compute_mce`); fewer than the 15 gives a
  partial mCE, labelled as such and naming what it covers;
- relative CE_c = sum_s (E(s, c) - E_clean) / sum_s (E_AlexNet(s, c) - E_AlexNet_clean), relative mCE their mean
  (google-research/robustness_metrics' `imagenet_variants` report);
- the unnormalised mean error: the mean over every corruption evaluated of its mean error over the severities
  (what hendrycks/robustness's ImageNet-C/test.py prints as "mCE (unnormalized by AlexNet errors)");
- CIFAR-C's mean error: per standard corruption the error over all its images (all severities pooled), then the
  mean over the corruptions (AugMix's cifar.py `test_c`, reported as 100 - accuracy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..datasets.corruptions import ALL_CORRUPTIONS, CORRUPTIONS, SEVERITIES, set_name

# AlexNet's ImageNet-C top-1 error per corruption, the mean over severities 1-5, as a fraction. Source:
# google-research/augmix imagenet.py, ALEXNET_ERR ("Raw AlexNet errors taken from
# https://github.com/hendrycks/robustness"); the same values to 3 digits are robustness_metrics'
# ALEXENET_AVERAGE_ERRORS (reports/imagenet_variants.py, "Appendix C" of Hendrycks & Dietterich 2019).
ALEXNET_ERR: dict[str, float] = dict(
    zip(
        CORRUPTIONS,
        (
            0.886428,
            0.894468,
            0.922640,
            0.819880,
            0.826268,
            0.785948,
            0.798360,
            0.866816,
            0.826572,
            0.819324,
            0.564592,
            0.853204,
            0.646056,
            0.717840,
            0.606500,
        ),
    )
)
# AlexNet's clean ImageNet val top-1 error (fraction). Source: google-research/robustness_metrics
# reports/imagenet_variants.py, ALEXNET_AVERAGE_ERR_CLEAN.
ALEXNET_CLEAN_ERR = 0.4348


def corruption_error(errors: Mapping[int, float], corruption: str) -> float | None:
    """CE_c in percent from c's errors (percent) per severity; None unless all 5 severities are there and c is one of
    the 15 (AlexNet's errors exist for those only)."""
    if corruption not in ALEXNET_ERR or sorted(errors) != list(SEVERITIES):
        return None
    return 100.0 * sum(errors[s] for s in SEVERITIES) / (len(SEVERITIES) * 100.0 * ALEXNET_ERR[corruption])


def relative_corruption_error(errors: Mapping[int, float], corruption: str, clean_err: float | None) -> float | None:
    """Relative CE_c in percent: sum_s (E(s, c) - E_clean) / sum_s (E_AlexNet(s, c) - E_AlexNet_clean); None without
    the clean error, all 5 severities, or AlexNet's error for c."""
    if clean_err is None or corruption not in ALEXNET_ERR or sorted(errors) != list(SEVERITIES):
        return None
    num = sum(errors[s] - clean_err for s in SEVERITIES)
    den = len(SEVERITIES) * 100.0 * (ALEXNET_ERR[corruption] - ALEXNET_CLEAN_ERR)
    return 100.0 * num / den


def _coverage(covered: Sequence[str], what: str) -> dict[str, Any]:
    missing = [c for c in CORRUPTIONS if c not in covered]
    partial = bool(missing)
    label = (
        f"partial {what} over {len(covered)} of the 15 corruptions (missing: {', '.join(missing)})"
        if partial
        else f"{what} over the 15 corruptions"
    )
    return {"partial": partial, "covers": list(covered), "missing": missing, "label": label}


def summarize_errors(
    table: Mapping[str, Mapping[int, float]],
    clean_err: float | None = None,
    pooled: Mapping[str, float] | None = None,
    alexnet: bool = True,
) -> dict[str, Any]:
    """Every number of the module docstring from `table` (corruption -> severity -> top-1 error in percent).

    clean_err: the clean top-1 error (percent), for the relative CEs; pooled: corruption -> error over all its
    evaluated images (percent), for CIFAR-C's AugMix mean (defaults to the mean over severities, equal when every
    severity holds the same images); alexnet False (CIFAR-C): no CE, mCE or relative mCE, AlexNet's errors being
    ImageNet-C's. -> {per_corruption: {c: {errors, mean_err, ce, relative_ce}}, mce,
    relative_mce (each None or {value, partial, covers, missing, label}), mean_err (all corruptions evaluated),
    mean_err_standard (the standard ones evaluated), augmix_mean_err, corruptions}.
    """
    order = [c for c in ALL_CORRUPTIONS if c in table] + sorted(c for c in table if c not in ALL_CORRUPTIONS)
    per: dict[str, dict[str, Any]] = {}
    for c in order:
        errs = {int(s): float(e) for s, e in sorted(table[c].items())}
        if not errs:
            continue
        per[c] = {
            "errors": {str(s): e for s, e in errs.items()},
            "mean_err": float(np.mean(list(errs.values()))),
            "ce": corruption_error(errs, c) if alexnet else None,
            "relative_ce": relative_corruption_error(errs, c, clean_err) if alexnet else None,
            "standard": c in CORRUPTIONS,
        }
    ces = [c for c in CORRUPTIONS if c in per and per[c]["ce"] is not None]
    mce = None
    if ces:
        mce = {"value": float(np.mean([per[c]["ce"] for c in ces])), **_coverage(ces, "mCE")}
    rel = [c for c in ces if per[c]["relative_ce"] is not None]
    relative_mce = None
    if rel:
        relative_mce = {"value": float(np.mean([per[c]["relative_ce"] for c in rel])), **_coverage(rel, "relative mCE")}
    standard = [c for c in CORRUPTIONS if c in per]
    pooled = dict(pooled or {})
    augmix = [pooled.get(c, per[c]["mean_err"]) for c in standard]
    return {
        "corruptions": list(per),
        "per_corruption": per,
        "mce": mce,
        "relative_mce": relative_mce,
        "mean_err": float(np.mean([per[c]["mean_err"] for c in per])) if per else None,
        "mean_err_standard": float(np.mean([per[c]["mean_err"] for c in standard])) if standard else None,
        "augmix_mean_err": (
            {"value": float(np.mean(augmix)), **_coverage(standard, "CIFAR-C mean error (AugMix)")}
            if standard
            else None
        ),
    }


def error_table(
    sets: Sequence[tuple[str, int]], wrong: np.ndarray, evaluated: np.ndarray
) -> tuple[dict[str, dict[int, float]], dict[str, float], dict[str, int]]:
    """From per-image outcomes to errors: sets[k] = (corruption, severity) of row k of `wrong` / `evaluated`, (K, N)
    bool (an image that was not evaluated, e.g. skipped as unreadable, is False in `evaluated`). -> (table
    corruption -> severity -> error in percent, pooled error per corruption over all its images, images per set)."""
    table: dict[str, dict[int, float]] = {}
    counts: dict[str, int] = {}
    pooled_wrong: dict[str, int] = {}
    pooled_n: dict[str, int] = {}
    for k, (c, s) in enumerate(sets):
        n = int(evaluated[k].sum())
        counts[set_name(c, s)] = n
        if n == 0:
            continue
        w = int((wrong[k] & evaluated[k]).sum())
        table.setdefault(c, {})[int(s)] = 100.0 * w / n
        pooled_wrong[c] = pooled_wrong.get(c, 0) + w
        pooled_n[c] = pooled_n.get(c, 0) + n
    pooled = {c: 100.0 * pooled_wrong[c] / pooled_n[c] for c in pooled_n}
    return table, pooled, counts
