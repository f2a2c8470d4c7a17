"""Classification error and calibration of a classifier's logits (docs/classification_protocol.md).

- top-k error as CutMix-PyTorch's test.py `accuracy`: a hit when the label is among the k largest logits
  (torch.topk order), error = 100 * misses / images; with fewer than k classes every class counts (error 0);
- NLL: the mean cross-entropy of the logits (natural log), as test.py's `CrossEntropyLoss`;
- ECE: 15 equal-width confidence bins, L1, exactly as torchmetrics' MulticlassCalibrationError (bin i holds the
  confidences in [i/15, (i+1)/15); a confidence of exactly 1 gets a bin of its own), in percent;
- RMS calibration error: `calib_err(p='2', beta=100)` of hendrycks' calibration_tools.py (Outlier Exposure, AugMix,
  natural-adv-examples), reproduced with its quirks (the doc lists them), in percent;
- temperature scaling: the T > 0 minimising the mean NLL of logits / T.
Confidences are the max softmax probability, computed in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ECE_BINS = 15
RMS_BIN_SIZE = 100  # calib_err's beta: samples per adaptive bin
# the temperature search interval (beta = 1 / T in [1 / T_MAX, 1 / T_MIN]); a fit at an end is reported as such
T_MIN, T_MAX = 1e-3, 1e3


def softmax(logits: np.ndarray) -> np.ndarray:
    """(N, K) logits -> (N, K) float64 probabilities (max-subtracted for stability)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def topk_predictions(logits: np.ndarray, k: int) -> np.ndarray:
    """(N, min(k, K)) class indices, largest logit first, as torch.topk(largest=True, sorted=True) orders them."""
    import torch

    k = min(int(k), logits.shape[1])
    return torch.from_numpy(np.ascontiguousarray(logits)).topk(k, dim=1, largest=True, sorted=True).indices.numpy()


def topk_correct(logits: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 5)) -> dict[int, np.ndarray]:
    """k -> (N,) bool: the label is among the k best classes (all classes when there are fewer than k)."""
    top = topk_predictions(logits, max(ks))
    hit = top == np.asarray(labels)[:, None]
    return {k: hit[:, :k].any(axis=1) for k in ks}


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean cross-entropy (nats) of logits / temperature against the labels, in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(z)), np.asarray(labels)]))


def confidence_and_correct(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0):
    """((N,) max softmax probability of logits / T in float64, (N,) bool top-1 correct)."""
    p = softmax(np.asarray(logits, dtype=np.float64) / float(temperature))
    pred = topk_predictions(logits, 1)[:, 0]  # T > 0 does not change the ranking
    return p.max(axis=1), pred == np.asarray(labels)


def bin_index(confidence: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """(N,) ECE bin of each confidence: i for [i / n_bins, (i + 1) / n_bins), n_bins for exactly 1 (torchmetrics'
    torch.bucketize(right=True) - 1); the report's ECE statistic bins with it too."""
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    return np.searchsorted(edges, np.asarray(confidence, dtype=np.float64), side="right") - 1


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """Per bin (n_bins + 1 of them, the last holding confidences of exactly 1, as torchmetrics): count, mean
    confidence and accuracy (0 for an empty bin), bin edges i / n_bins."""
    conf = np.asarray(confidence, dtype=np.float64)
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    idx = bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins + 1).astype(np.float64)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins + 1)
    acc_sum = np.bincount(idx, weights=np.asarray(correct, dtype=np.float64), minlength=n_bins + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.nan_to_num(conf_sum / count)
        accuracy = np.nan_to_num(acc_sum / count)
    return {"count": count, "confidence": mean_conf, "accuracy": accuracy, "edges": edges}


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE in percent: sum over bins of (share of images) * |accuracy - mean confidence| (`reliability_bins`)."""
    b = reliability_bins(confidence, correct, n_bins)
    return 100.0 * float(np.sum(np.abs(b["accuracy"] - b["confidence"]) * b["count"] / b["count"].sum()))


def rms_calibration_error(confidence: np.ndarray, correct: np.ndarray, beta: int = RMS_BIN_SIZE) -> float | None:
    """calib_err(confidence, correct, p='2', beta) in percent, quirks included: sort by confidence (numpy's default
    argsort), bins of `beta` consecutive samples, the last stretched to the end and then left out of the sum,
    weights n_bin / N. None for N < beta, where the reference fails (IndexError)."""
    conf = np.asarray(confidence, dtype=np.float64)
    n = len(conf)
    full = n // beta
    if full == 0:
        return None
    order = np.argsort(conf)
    used = (full - 1) * beta  # every bin but the last (stretched) one
    c = conf[order][:used].reshape(-1, beta)
    a = np.asarray(correct, dtype=np.float64)[order][:used].reshape(-1, beta)
    sq = (np.nanmean(c, axis=1) - np.nanmean(a, axis=1)) ** 2
    return 100.0 * float(np.sqrt(np.sum(beta / n * sq)))


def _nll_slope(z: np.ndarray, labels: np.ndarray, beta: float) -> tuple[float, float]:
    """First and second derivative in beta of mean NLL(beta * z): mean of E_p[z] - z_label and of Var_p[z], p =
    softmax(beta * z). The first is non-decreasing in beta (NLL is convex in beta)."""
    p = softmax(beta * z)
    ez = (p * z).sum(axis=1)
    return float(np.mean(ez - z[np.arange(len(z)), labels])), float(np.mean((p * z * z).sum(axis=1) - ez * ez))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, tol: float = 1e-12, max_steps: int = 200) -> dict[str, Any]:
    """The temperature T minimising mean NLL(logits / T). NLL is convex in beta = 1 / T, so the zero of its slope is
    kept in a bracket [1 / T_MAX, 1 / T_MIN] and found by Newton steps in beta, a bisection (in log beta) whenever a
    step leaves the bracket, until the bracket or the step is below `tol` (relative). -> {'temperature',
    'at_bound': None | 'T_MIN' | 'T_MAX'} (at a bound the minimum lies outside the interval, e.g. separable data)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    lo, hi = 1.0 / T_MAX, 1.0 / T_MIN
    if _nll_slope(z, y, hi)[0] <= 0:
        return {"temperature": T_MIN, "at_bound": "T_MIN"}
    if _nll_slope(z, y, lo)[0] >= 0:
        return {"temperature": T_MAX, "at_bound": "T_MAX"}
    beta = 1.0
    for _ in range(int(max_steps)):
        g, h = _nll_slope(z, y, beta)
        if g > 0:
            hi = beta
        else:
            lo = beta
        step = g / h if h > 0 else np.inf
        nxt = beta - step
        if not lo < nxt < hi:
            nxt = float(np.sqrt(lo * hi))  # bisection in log beta
        if abs(nxt - beta) <= tol * beta or hi - lo <= tol * lo:
            beta = nxt
            break
        beta = nxt
    return {"temperature": float(1.0 / beta), "at_bound": None}


def split_for_temperature(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit positions, held-out positions), each sorted: a seeded random round(fraction * n) of range(n) to fit T
    on (numpy PCG64 seeded with (seed, 2)), the rest to report on."""
    k = int(round(float(fraction) * n))
    perm = np.random.default_rng([int(seed), 2]).permutation(n)
    return np.sort(perm[:k]), np.sort(perm[k:])


def classification_metrics(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> dict[str, Any]:
    """top1_err, top5_err, nll, ece (percent but nll) and rms_calib_err (percent; None under RMS_BIN_SIZE images) of
    logits / temperature."""
    hits = topk_correct(logits, labels)
    conf, correct = confidence_and_correct(logits, labels, temperature)
    return {
        "top1_err": 100.0 * int(np.sum(~hits[1])) / len(hits[1]),  # misses / images, as test.py's count
        "top5_err": 100.0 * int(np.sum(~hits[5])) / len(hits[5]),
        "nll": nll(logits, labels, temperature),
        "ece": expected_calibration_error(conf, correct),
        "rms_calib_err": rms_calibration_error(conf, correct),
    }
