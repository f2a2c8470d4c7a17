"""The bootstrap against direct computations: exact enumeration on tiny n, a known interval, recomputed metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import mmdet_voc_map

import cutmix_transfer.bootstrap as bs
from cutmix_transfer.bootstrap import (
    VOCMapStatistic,
    bootstrap_interval,
    max_over_thresholds_statistic,
    mean_statistic,
    paired_difference,
    percentile_interval,
    resample_counts,
)


def test_counts_are_resamples_with_replacement():
    w = resample_counts(7, 500, seed=3)
    assert w.shape == (500, 7) and np.all(w.sum(axis=1) == 7)
    assert np.allclose(w.mean(axis=0), 1.0, atol=0.15)  # each image drawn once per resample on average
    assert np.array_equal(w, resample_counts(7, 500, seed=3))  # seeded
    assert not np.array_equal(w, resample_counts(7, 500, seed=4))


def test_chunked_draws_equal_one_draw(monkeypatch):

    whole = np.random.default_rng(9).multinomial(50, np.full(50, 1 / 50), size=300).astype(float)
    monkeypatch.setattr(bs, "CHUNK_ELEMENTS", 50 * 7)  # chunks of 7 resamples
    assert np.array_equal(bs.resample_counts(50, 300, seed=9), whole)
    x = np.arange(50.0)
    value, values = bs.bootstrap_values(mean_statistic(x), 50, 300, seed=9)
    assert value == pytest.approx(24.5) and np.allclose(values, whole @ x / 50)


def test_mean_interval_matches_exact_enumeration_on_tiny_n():
    x = np.array([0.0, 1.0, 5.0])
    # every one of the 3^3 equally likely draws with replacement, and its mean
    exact = np.array([x[list(idx)].mean() for idx in itertools.product(range(3), repeat=3)])
    # exact CDF of the bootstrap mean: the percentile interval of a large bootstrap lands on its support points
    got = bootstrap_interval(mean_statistic(x), 3, resamples=40000, seed=1)
    assert got.value == pytest.approx(2.0)
    exact_lo, exact_hi = np.sort(exact)[[0, -1]]
    assert exact_lo <= got.low <= got.high <= exact_hi
    # the sampled distribution equals the enumerated one (probability of each distinct mean)
    w = resample_counts(3, 40000, seed=1)
    sampled = mean_statistic(x)(w)
    for v in np.unique(exact):
        assert np.mean(np.isclose(sampled, v)) == pytest.approx(np.mean(np.isclose(exact, v)), abs=0.01)
    # the 2.5% / 97.5% quantiles of the exact distribution (inverted CDF: the distribution's own quantiles)
    lo, hi = np.quantile(exact, [0.025, 0.975], method="inverted_cdf")
    assert (got.low, got.high) == (lo, hi) == (0.0, 5.0)
    x2 = np.array([0.0, 1.0, 2.0, 10.0])
    exact2 = np.array([x2[list(idx)].mean() for idx in itertools.product(range(4), repeat=4)])
    got2 = bootstrap_interval(mean_statistic(x2), 4, resamples=40000, seed=2)
    lo2, hi2 = np.quantile(exact2, [0.025, 0.975], method="inverted_cdf")
    assert got2.low == pytest.approx(lo2, abs=0.26) and got2.high == pytest.approx(hi2, abs=0.26)
    assert percentile_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))


def test_mean_of_binary_values_has_the_binomial_interval():
    n, p = 2000, 0.3
    x = np.zeros(n)
    x[: int(n * p)] = 100.0
    got = bootstrap_interval(mean_statistic(x), n, resamples=4000, seed=0)
    half = 1.96 * 100 * np.sqrt(p * (1 - p) / n)  # normal approximation, exact enough at n = 2000
    assert got.value == pytest.approx(30.0)
    assert got.low == pytest.approx(30.0 - half, abs=0.25) and got.high == pytest.approx(30.0 + half, abs=0.25)


def test_maxboxacc_is_recomputed_on_the_resampled_images():
    rng = np.random.default_rng(0)
    hits = rng.random((12, 3, 9)) < 0.5  # 12 images, 3 IoU levels, 9 CAM thresholds
    stat = max_over_thresholds_statistic(hits)

    def direct(idx):
        h = hits[idx].astype(float)  # the resampled image set, duplicates included
        return 100 * np.mean([h[:, k, :].mean(axis=0).max() for k in range(3)])

    assert stat(np.ones((1, 12)))[0] == pytest.approx(direct(np.arange(12)))
    idx = rng.integers(0, 12, size=12)
    w = np.bincount(idx, minlength=12)[None, :].astype(float)
    assert stat(w)[0] == pytest.approx(direct(idx))


def test_paired_difference_identical_and_shifted():
    rng = np.random.default_rng(1)
    a = rng.random(200) * 100
    same = paired_difference(mean_statistic(a), mean_statistic(a), 200, resamples=500, seed=0)
    assert same.value == 0 and same.low == 0 and same.high == 0 and same.p_value == 1.0
    shifted = paired_difference(mean_statistic(a + 2.0), mean_statistic(a), 200, resamples=500, seed=0)
    # a constant per-image shift: every resample differs by exactly 2, the interval is a point, p tiny
    assert shifted.value == pytest.approx(2.0) and shifted.low == pytest.approx(2.0)
    assert shifted.high == pytest.approx(2.0) and shifted.p_value == 0.0
    # the paired interval of a - b equals the interval of the per-image difference's mean (same draws)
    b = rng.random(200) * 100
    pd = paired_difference(mean_statistic(a), mean_statistic(b), 200, resamples=500, seed=5)
    direct = bootstrap_interval(mean_statistic(a - b), 200, resamples=500, seed=5)
    assert (pd.low, pd.high) == pytest.approx((direct.low, direct.high))
    d = mean_statistic(a - b)(resample_counts(200, 500, seed=5))
    assert pd.p_value == pytest.approx(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))))


def _det_case(seed: int, n: int = 15, classes: int = 3):
    rng = np.random.default_rng(seed)
    dets, gts = [], []
    for _ in range(n):
        m = rng.integers(0, 4)
        centers = rng.random((m, 2)) * 80
        boxes = np.concatenate([centers, centers + 10 + rng.random((m, 2)) * 20], axis=1).astype(np.float32)
        labels = rng.integers(0, classes, size=m)
        gts.append(
            {
                "bboxes": boxes,
                "labels": labels,
                "bboxes_ignore": np.zeros((0, 4), np.float32),
                "labels_ignore": np.zeros(0, int),
            }
        )
        per_class = []
        for c in range(classes):
            own = boxes[labels == c] + rng.normal(0, 3, size=(int((labels == c).sum()), 4)).astype(np.float32)
            extra = rng.random((rng.integers(0, 3), 2)) * 80
            extra = np.concatenate([extra, extra + 15], axis=1)
            b = np.concatenate([own, extra]).astype(np.float32)
            per_class.append(np.concatenate([b, rng.random((len(b), 1))], axis=1).astype(np.float32))
        dets.append(per_class)
    return dets, gts


@pytest.mark.parametrize("mode", ["11points", "area"])
def test_voc_map_equals_mmdet_eval_map_on_a_resample(mode):
    dets, gts = _det_case(0)
    stat = VOCMapStatistic(dets, gts, eval_mode=mode)
    full = mmdet_voc_map(dets, gts, mode)
    assert stat(np.ones((1, len(gts))))[0] == pytest.approx(100 * full)
    rng = np.random.default_rng(2)
    for _ in range(3):
        idx = rng.integers(0, len(gts), size=len(gts))
        ref = mmdet_voc_map([dets[i] for i in idx], [gts[i] for i in idx], mode)
        w = np.bincount(idx, minlength=len(gts))[None, :].astype(float)
        assert stat(w)[0] == pytest.approx(100 * ref, abs=1e-4)  # eval_map sums in float32
