"""clseval.calibration: top-k error against an independent count and CutMix-PyTorch's batch averages, ECE against
torchmetrics and hand-built cases, the RMS error against a loop written from hendrycks' calib_err, the temperature
fit against a brute-force grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cutmix_transfer.clseval import calibration as CAL


def _logits(n: int, k: int, seed: int, scale: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 logits and labels drawn from softmax(logits): a model whose calibrated temperature is 1."""
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, k)) * scale).astype(np.float32)
    p = np.exp(z.astype(np.float64) - z.max(1, keepdims=True))
    cdf = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
    y = np.minimum((rng.random((n, 1)) > cdf).sum(axis=1), k - 1)  # inverse-CDF draws
    return z, y


# ---------------------------------------------------------------------------------------------- top-k and NLL
def test_topk_error_equals_an_independent_count():
    z, y = _logits(503, 20, 0)
    order = np.argsort(-z.astype(np.float64), axis=1, kind="stable")  # random floats: no ties
    top1_miss = sum(int(order[i, 0] != y[i]) for i in range(len(y)))
    top5_miss = sum(int(y[i] not in order[i, :5]) for i in range(len(y)))
    m = CAL.classification_metrics(z, y)
    assert m["top1_err"] == pytest.approx(100.0 * top1_miss / len(y), abs=1e-12)
    assert m["top5_err"] == pytest.approx(100.0 * top5_miss / len(y), abs=1e-12)


def test_topk_error_equals_cutmix_pytorch_batch_averages():
    """test.py: per-batch errors from output.topk(5), averaged weighted by batch size (AverageMeter)."""
    z, y = _logits(301, 10, 1)
    err_sum, count = {1: 0.0, 5: 0.0}, 0
    for s in range(0, len(y), 64):
        out, target = torch.from_numpy(z[s : s + 64]), torch.from_numpy(y[s : s + 64])
        _, pred = out.topk(5, 1, True, True)
        correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
        for k in (1, 5):
            wrong = len(target) - correct[:k].reshape(-1).float().sum().item()
            err_sum[k] += wrong * 100.0 / len(target) * len(target)
        count += len(target)
    m = CAL.classification_metrics(z, y)
    assert m["top1_err"] == pytest.approx(err_sum[1] / count, abs=1e-9)
    assert m["top5_err"] == pytest.approx(err_sum[5] / count, abs=1e-9)


def test_top5_with_fewer_classes_counts_every_class():
    z, y = _logits(40, 3, 2)
    assert CAL.classification_metrics(z, y)["top5_err"] == 0.0


def test_nll_equals_torch_cross_entropy():
    z, y = _logits(200, 7, 3)
    want = torch.nn.functional.cross_entropy(torch.from_numpy(z).double(), torch.from_numpy(y)).item()
    assert CAL.nll(z, y) == pytest.approx(want, rel=1e-12)
    want_t = torch.nn.functional.cross_entropy(torch.from_numpy(z).double() / 2.5, torch.from_numpy(y)).item()
    assert CAL.nll(z, y, 2.5) == pytest.approx(want_t, rel=1e-12)


# ---------------------------------------------------------------------------------------------- ECE
@pytest.mark.parametrize("n,k,scale", [(1000, 10, 3.0), (257, 100, 1.0), (64, 2, 8.0)])
def test_ece_equals_torchmetrics(n, k, scale):
    tm = pytest.importorskip("torchmetrics.classification")
    z, y = _logits(n, k, 10 + n, scale)
    probs = torch.softmax(torch.from_numpy(z).double(), dim=1)  # probabilities: torchmetrics takes them as given
    metric = tm.MulticlassCalibrationError(num_classes=k, n_bins=15, norm="l1")
    want = 100.0 * metric(probs, torch.from_numpy(y)).item()
    conf, correct = CAL.confidence_and_correct(z, y)
    # torchmetrics casts the confidences to float32 and sums in float32: equal to float32 rounding (1e-6 of a %)
    assert CAL.expected_calibration_error(conf, correct) == pytest.approx(want, abs=1e-4)
    assert CAL.classification_metrics(z, y)["ece"] == pytest.approx(want, abs=1e-4)
    # the same bins: float32 confidences binned and summed in float64 match torchmetrics' float32 sums closer still
    c32 = conf.astype(np.float32).astype(np.float64)
    assert CAL.expected_calibration_error(c32, correct) == pytest.approx(want, abs=1e-5)


def test_ece_hand_built_cases():
    ece = CAL.expected_calibration_error
    # perfectly calibrated bins: 0 -- a bin of confidence 0.75 (bin 11) right 3 times in 4
    assert ece(np.full(4, 0.75), np.array([1, 1, 1, 0])) == pytest.approx(0.0, abs=1e-12)
    # two bins of two images: |0.5 - 0.55| * 0.5 + |1 - 0.95| * 0.5 = 0.05 -> 5 %
    assert ece(np.array([0.55, 0.55, 0.95, 0.95]), np.array([1, 0, 1, 1])) == pytest.approx(5.0, abs=1e-10)
    # over-confidence: always 0.9 sure, right half the time -> 40 %
    assert ece(np.full(10, 0.9), np.arange(10) % 2) == pytest.approx(40.0, abs=1e-10)
    # a confidence of exactly 1 has a bin of its own (torchmetrics): 0.94 (bin 14) and 1.0 do not average
    assert ece(np.array([0.94, 1.0]), np.array([0, 1])) == pytest.approx(100 * 0.94 / 2, abs=1e-10)


def test_reliability_bins_are_half_open():
    b = CAL.reliability_bins(np.array([0.0, 0.6, 1 / 15, 0.9999, 1.0]), np.array([1, 0, 1, 1, 1]))
    assert b["count"].tolist() == [1, 1] + [0] * 7 + [1] + [0] * 4 + [1, 1]  # 0.6 = 9/15 opens bin 9
    assert b["edges"][9] == 0.6 and len(b["count"]) == 16


# ---------------------------------------------------------------------------------------------- RMS (calib_err)
def _reference_calib_err(confidence: np.ndarray, correct: np.ndarray, beta: int = 100) -> float:
    """hendrycks' calib_err(p='2') as its loop reads, written out again (outlier-exposure calibration_tools.py)."""
    idxs = np.argsort(confidence)
    confidence, correct = confidence[idxs], correct[idxs]
    bins = [[i * beta, (i + 1) * beta] for i in range(len(confidence) // beta)]
    bins[-1] = [bins[-1][0], len(confidence)]  # IndexError for fewer than beta samples, as the reference
    cerr = 0.0
    for i in range(len(bins) - 1):  # the last bin never counts
        c, a = confidence[bins[i][0] : bins[i][1]], correct[bins[i][0] : bins[i][1]]
        if len(c) > 0:
            cerr += len(c) / len(confidence) * np.square(np.abs(np.nanmean(c) - np.nanmean(a)))
    return float(np.sqrt(cerr))


@pytest.mark.parametrize("n", [100, 150, 250, 1234, 2000])
def test_rms_equals_the_reference_loop(n):
    z, y = _logits(n, 10, n, 4.0)
    conf, correct = CAL.confidence_and_correct(z, y)
    want = 100.0 * _reference_calib_err(conf, correct.astype(np.float64))
    assert CAL.rms_calibration_error(conf, correct) == pytest.approx(want, abs=1e-10)


def test_rms_quirks():
    conf = np.linspace(0.5, 1.0, 199)
    assert CAL.rms_calibration_error(conf, np.zeros(199)) == 0.0  # one (stretched, skipped) bin: 0
    assert CAL.rms_calibration_error(conf[:99], np.zeros(99)) is None  # the reference fails here
    with pytest.raises(IndexError):
        _reference_calib_err(conf[:99], np.zeros(99))
    # 300 images, all wrong: bins 1-2 count with weight 100/300 each, the top 100 are left out
    c = np.concatenate([np.full(100, 0.2), np.full(100, 0.4), np.full(100, 0.9)])
    want = 100 * math.sqrt(100 / 300 * 0.2**2 + 100 / 300 * 0.4**2)
    assert CAL.rms_calibration_error(c, np.zeros(300)) == pytest.approx(want, abs=1e-10)


# ---------------------------------------------------------------------------------------------- temperature
def test_temperature_fit_equals_a_brute_force_grid():
    z, y = _logits(2000, 10, 7, 2.0)
    z_over = z * 2.5  # the same model, over-confident: the best T is near 2.5
    fit = CAL.fit_temperature(z_over, y)
    grid = np.arange(0.5, 6.0, 0.0005)
    nlls = np.array([CAL.nll(z_over, y, t) for t in grid])
    best = grid[int(np.argmin(nlls))]
    assert fit["at_bound"] is None and abs(fit["temperature"] - best) <= 0.0005
    assert CAL.nll(z_over, y, fit["temperature"]) <= nlls.min() + 1e-12
    assert 2.0 < fit["temperature"] < 3.0


def test_temperature_fit_at_the_bounds():
    y = np.arange(50) % 5
    separable = np.eye(5, dtype=np.float32)[y] * 10  # every image right: NLL falls as T -> 0
    assert CAL.fit_temperature(separable, y) == {"temperature": CAL.T_MIN, "at_bound": "T_MIN"}
    wrong = np.eye(5, dtype=np.float32)[(y + 1) % 5] * 10  # every image wrong: NLL falls as T -> infinity
    assert CAL.fit_temperature(wrong, y) == {"temperature": CAL.T_MAX, "at_bound": "T_MAX"}


def test_temperature_split_is_seeded_and_disjoint():
    fit, held = CAL.split_for_temperature(101, 0.3, 5)
    assert len(fit) == 30 and len(held) == 71 and not set(fit) & set(held)
    assert sorted(set(fit) | set(held)) == list(range(101))
    again = CAL.split_for_temperature(101, 0.3, 5)
    assert np.array_equal(fit, again[0]) and not np.array_equal(fit, CAL.split_for_temperature(101, 0.3, 6)[0])
