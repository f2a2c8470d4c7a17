"""Paired tests, Holm, p-value printing and the replicate (several training runs) statistics against exact
enumeration and independent computations written out here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cutmix_transfer.caption_stats import corpus_bleu, corpus_meteor, corpus_statistic
from cutmix_transfer.ood.metrics import MeanOverSetsStatistic
from cutmix_transfer.report import significance
from cutmix_transfer.report.bootstrap import (
    MaxOverThresholdsStatistic,
    mean_statistic,
    percentile_interval,
    resample_counts,
)
from cutmix_transfer.report.replicates import (
    SINGLE_RUN_NOTE,
    probability_of_improvement,
    replicate_difference,
    replicate_interval,
    run_draws,
    run_label_test,
    run_mean_values,
    t_quantile,
)
from cutmix_transfer.report.significance import (
    PairedTest,
    family_permutations,
    format_p,
    holm,
    mcnemar_exact,
    paired_mean_test,
    paired_test,
    sign_flip_test,
    swap_permutation_test,
)


def _brute_sign_flip(d: np.ndarray) -> float:
    """P(|sum s_i d_i| >= |sum d_i|) over every sign vector: vector k's signs are the bits of k."""
    t, k, hits = abs(d.sum()), len(d), 0
    for start in range(0, 2**k, 2**14):
        bits = (np.arange(start, min(start + 2**14, 2**k))[:, None] >> np.arange(k)[None, :]) & 1
        hits += int(np.sum(np.abs((1.0 - 2.0 * bits) @ d) >= t - 1e-9))
    return hits / 2**k


# ---- McNemar and sign-flip ----


def test_mcnemar_is_the_binomial_test_and_the_issue_numbers():
    from scipy.stats import binomtest

    for b, c in [(24, 6), (6, 24), (3, 3), (0, 5), (10, 0), (7, 12), (0, 0)]:
        ref = binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
        assert mcnemar_exact(b, c) == pytest.approx(ref, rel=1e-12)
    # issue 24: the demo's top-1 error, 24 vs 6 discordant images: 0.0014 from both McNemar and sign-flip
    assert format_p(mcnemar_exact(24, 6)) == "0.0014"
    # by hand: 2 * sum_{i <= 6} C(30, i) / 2^30
    assert mcnemar_exact(24, 6) == pytest.approx(2 * sum(math.comb(30, i) for i in range(7)) / 2**30)


def test_paired_mean_test_of_01_outcomes_is_mcnemar_and_the_sign_flip():
    rng = np.random.default_rng(0)
    a = 100.0 * (rng.random(300) < 0.7)
    b = a.copy()
    flip = rng.choice(300, 14, replace=False)
    b[flip] = 100.0 - b[flip]  # 14 discordant images
    got = paired_mean_test(a, b)
    nb, nc = int(np.sum((a > 0) & (b == 0))), int(np.sum((a == 0) & (b > 0)))
    assert got.method == "exact McNemar" and got.detail == f"{nb} vs {nc} discordant images"
    assert got.p_value == pytest.approx(_brute_sign_flip((a - b)[a != b]))
    assert got.difference == pytest.approx(a.mean() - b.mean())
    assert got.floor == pytest.approx(2 / 2**14) and got.permutations == 0


def test_exact_sign_flip_on_continuous_differences():
    rng = np.random.default_rng(1)
    d = np.round(rng.normal(0.4, 1.0, size=14), 3)
    d[[2, 5]] = 0.0  # zeros never change sign
    x_b = rng.random(14)
    got = paired_mean_test(x_b + d, x_b)
    assert got.method == "exact sign-flip"
    assert got.p_value == pytest.approx(_brute_sign_flip(d[d != 0]))
    assert got.difference == pytest.approx(d.mean())
    # ties: equal-magnitude values make several sign vectors as extreme as the observed one
    tied = np.array([1.0, 1.0, 1.0, -1.0, 2.0, 1.0])
    assert sign_flip_test(tied).p_value == pytest.approx(_brute_sign_flip(tied))


def test_monte_carlo_sign_flip_p_and_floor():
    rng = np.random.default_rng(2)
    d = rng.integers(-3, 5, size=60).astype(float)  # integer differences: the exact law by convolution
    nz = d[d != 0]
    dist = {0: 1.0}
    for x in nz:  # the exact distribution of sum s_i d_i, one image at a time
        nxt: dict[int, float] = {}
        for v, pr in dist.items():
            for s in (x, -x):
                nxt[int(v + s)] = nxt.get(int(v + s), 0.0) + pr / 2
        dist = nxt
    exact = sum(pr for v, pr in dist.items() if abs(v) >= abs(nz.sum()))
    got = sign_flip_test(d, permutations=20000, seed=3)
    assert got.method == "Monte Carlo sign-flip" and got.permutations == 20000
    assert got.floor == pytest.approx(1 / 20001)
    assert got.p_value == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 20000) + 1e-4)
    # a difference no sign vector reaches: p is the floor (1 + 0) / (1 + B), never 0 and never "< 1/B"
    huge = sign_flip_test(np.full(40, 1.0), permutations=999, seed=0)
    assert huge.p_value == pytest.approx(1 / 1000) and huge.p_value == huge.floor
    assert "smallest possible p 0.001" in huge.describe() and "<" not in huge.describe()


# ---- swap permutations ----


def _swap_p(metric_of_mix, n: int) -> float:
    """Exact swap-permutation p from a function of the swap vector giving (metric of a', metric of b')."""
    a0, b0 = metric_of_mix(np.zeros(n, dtype=bool))
    obs = abs(a0 - b0)
    ds = []
    for s in itertools.product((False, True), repeat=n):
        a, b = metric_of_mix(np.array(s))
        ds.append(abs(a - b))
    return float(np.mean(np.array(ds) >= obs - 1e-9))


def test_swap_test_of_a_mean_is_the_sign_flip_test():
    rng = np.random.default_rng(4)
    xa, xb = rng.random(11) * 10, rng.random(11) * 10
    got = swap_permutation_test(mean_statistic(xa), mean_statistic(xb), 11)
    assert got.method == "exact swap permutation"
    assert got.p_value == pytest.approx(_brute_sign_flip(xa - xb))


def test_swap_test_of_maxboxacc_equals_recomputing_on_swapped_hits():
    rng = np.random.default_rng(5)
    ha, hb = rng.random((9, 2, 6)) < 0.5, rng.random((9, 2, 6)) < 0.6

    def direct(h):
        return 100 * np.mean([h[:, k, :].mean(axis=0).max() for k in range(2)])

    def mix(s):
        return direct(np.where(s[:, None, None], hb, ha)), direct(np.where(s[:, None, None], ha, hb))

    got = swap_permutation_test(MaxOverThresholdsStatistic(ha), MaxOverThresholdsStatistic(hb), 9)
    assert got.difference == pytest.approx(direct(ha) - direct(hb))
    assert got.p_value == pytest.approx(_swap_p(mix, 9))


def test_swap_test_of_bleu_and_meteor_pools_the_statistics():
    rng = np.random.default_rng(6)
    n = 8
    hyp = rng.integers(5, 12, size=(2, n))
    guess = np.stack([np.maximum(hyp - k, 0) for k in range(4)], axis=-1)
    correct = (guess * rng.random((2, n, 4))).astype(int)
    bleu = [np.column_stack([hyp[m], hyp[m] + rng.integers(-2, 3, n), guess[m], correct[m]]) for m in range(2)]
    mix_bleu = [corpus_statistic("BLEU-4", s) for s in bleu]

    def bleu_mix(s):
        ma, mb = np.where(s[:, None], bleu[1], bleu[0]), np.where(s[:, None], bleu[0], bleu[1])
        return tuple(100 * corpus_bleu(np.ones((1, n)), m)[0, 3] for m in (ma, mb))

    assert swap_permutation_test(*mix_bleu, n).p_value == pytest.approx(_swap_p(bleu_mix, n))
    # METEOR: 23 jar statistics per image, some segments matched whole in one chunk (no chunk added to a sum)
    met = []
    for _ in range(2):
        s = rng.integers(1, 6, size=(n, 23)).astype(float)
        s[:, 0], s[:, 1] = s[:, 4:20:4].sum(1) + s[:, 6:20:4].sum(1), s[:, 5:20:4].sum(1) + s[:, 7:20:4].sum(1)
        s[::3, 20] = 1.0
        met.append(s)

    def met_mix(s):
        ma, mb = np.where(s[:, None], met[1], met[0]), np.where(s[:, None], met[0], met[1])
        return tuple(100 * corpus_meteor(np.ones((1, n)), m)[0] for m in (ma, mb))

    pair = [corpus_statistic("METEOR", s) for s in met]
    assert swap_permutation_test(*pair, n).p_value == pytest.approx(_swap_p(met_mix, n))


def test_swap_test_of_ood_auroc_pools_the_scores():
    rng = np.random.default_rng(7)
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    sa, sb = rng.random(10), rng.random(10) + 0.1 * (groups == 0)

    def auroc(scores):  # pairs won by an in-distribution score, ties one half, mean over the two sets
        ins = scores[groups == 0]
        return 100 * np.mean(
            [np.mean([(i > o) + 0.5 * (i == o) for i in ins for o in scores[groups == g]]) for g in (1, 2)]
        )

    def mix(s):
        return auroc(np.where(s, sb, sa)), auroc(np.where(s, sa, sb))

    stats = [MeanOverSetsStatistic(x, groups, "auroc") for x in (sa, sb)]
    got = swap_permutation_test(*stats, 10)
    assert got.difference == pytest.approx(auroc(sa) - auroc(sb))
    assert got.p_value == pytest.approx(_swap_p(mix, 10))


def test_monte_carlo_swap_test_and_the_sequential_stop():
    rng = np.random.default_rng(8)
    xa = rng.random(20)
    xb = xa - 0.08 + 0.3 * rng.standard_normal(20)
    a, b = mean_statistic(xa), mean_statistic(xb)
    exact = _brute_sign_flip(xa - xb)  # 2^20 sign vectors; the swap test draws (20 images > EXACT_SWAP_LIMIT)
    got = swap_permutation_test(a, b, 20, permutations=4000, seed=1)
    assert got.method == "Monte Carlo swap permutation" and got.floor == pytest.approx(1 / 4001)
    assert got.p_value == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 4000) + 1e-3)
    # Besag-Clifford: the same swaps in the same order (200 a draw); the 10th as extreme as observed comes at L
    rng, d, obs, hits = np.random.default_rng(1), xa - xb, abs((xa - xb).mean()), []
    while sum(hits) < 10:  # a swap of a mean: a' - b' = mean((1 - 2 s) (xa - xb))
        swaps = rng.integers(0, 2, size=(200, 20)).astype(float)
        hits += (np.abs(((1 - 2 * swaps) * d).mean(axis=1)) >= obs - 1e-12).tolist()
    at = int(np.flatnonzero(hits)[9]) + 1
    stopped = swap_permutation_test(a, b, 20, permutations=4000, seed=1, stop_after=10)
    assert stopped.permutations == at and stopped.p_value == pytest.approx(10 / at)
    # identical outputs: every swap is as extreme, Besag-Clifford stops at the h-th permutation with p = 1
    same = swap_permutation_test(a, a, 20, permutations=4000, seed=1, stop_after=10)
    assert same.p_value == 1.0 and same.permutations == 10
    # paired_test picks the exact test for two means, the swap test otherwise
    assert paired_test(a, b, 20).method == "exact sign-flip"
    with pytest.raises(ValueError, match="pooled"):
        swap_permutation_test(lambda w: w.sum(axis=1), lambda w: w.sum(axis=1), 20)


# ---- Holm, permutation counts, printing ----


def _holm_reference(p: list[float], alpha: float) -> set[int]:
    """Holm's procedure as stated: walk the sorted p-values, reject while p_(k) <= alpha / (m - k + 1)."""
    m, rejected = len(p), set()
    for k, i in enumerate(sorted(range(m), key=lambda j: p[j]), start=1):
        if p[i] > alpha / (m - k + 1):
            break
        rejected.add(i)
    return rejected


def test_holm_adjusted_p_values_reject_as_the_procedure():
    rng = np.random.default_rng(9)
    for _ in range(30):
        p = list(rng.random(7) ** 3)
        adj = holm(p)
        for alpha in (0.01, 0.05, 0.1, 0.2):
            assert {i for i in range(7) if adj[i] <= alpha} == _holm_reference(p, alpha)
        assert np.all(adj >= np.array(p)) and np.all(adj <= 1.0)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3 x 0.01; max(2 x 0.03, 0.03)


def test_family_permutations_reach_holm_first_threshold():
    for m in (1, 10, 99, 100, 101, 400):
        b = family_permutations(m)
        assert b >= m / 0.05 and 1 / (1 + b) < 0.05 / m and b >= 1999


def test_format_p():
    assert format_p(0.0014) == "0.0014" and format_p(0.5) == "0.50" and format_p(1 / 2000) == "0.0005"
    assert format_p(0.00044) == "0.00044" and format_p(3.2e-12) == "3.2e-12"
    t = PairedTest(1.0, 0.0014, "exact McNemar", 2.0**-29, 0, "24 vs 6 discordant images")
    assert t.describe() == "p = 0.0014 (exact McNemar, 24 vs 6 discordant images)"


# ---- replicates ----


def test_probability_of_improvement_is_rliables():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(10)
    for _ in range(20):
        x, y = rng.integers(0, 4, size=3).astype(float), rng.integers(0, 4, size=4).astype(float)
        pairs = [1.0 if a > b else 0.5 if a == b else 0.0 for a in x for b in y]
        assert probability_of_improvement(x, y) == pytest.approx(np.mean(pairs))
        if not np.array_equal(x, y):  # rliable: mannwhitneyu(x, y, 'greater').statistic / (nx ny)
            assert probability_of_improvement(x, y) == pytest.approx(
                mannwhitneyu(x, y, alternative="greater").statistic / 12
            )
    assert probability_of_improvement([1.0, 2.0], [1.0, 2.0]) == 0.5
    xs, ys = rng.random((3, 2)), rng.random((5, 2))  # two tasks: the mean of the per-task probabilities
    both = np.mean([probability_of_improvement(xs[:, k], ys[:, k]) for k in range(2)])
    assert probability_of_improvement(xs, ys) == pytest.approx(both)


def test_run_label_permutation_is_exact_with_floor_0_1_for_3_vs_3():
    a, b = np.array([30.1, 29.5, 31.0]), np.array([28.0, 28.9, 27.5])
    got = run_label_test(a, b)
    pooled = np.concatenate([a, b])
    diffs = [pooled[list(p[:3])].mean() - pooled[list(p[3:])].mean() for p in itertools.permutations(range(6))]
    assert got.p_value == pytest.approx(np.mean(np.abs(diffs) >= abs(a.mean() - b.mean()) - 1e-9))
    assert got.p_value == pytest.approx(0.1) and got.floor == pytest.approx(0.1)  # fully separated: the floor
    assert got.detail == "3 vs 3 runs, 20 relabelings"
    described = "p = 0.10 (exact run-label permutation, 3 vs 3 runs, 20 relabelings, smallest possible p 0.10)"
    assert got.describe() == described
    mixed = run_label_test(np.array([1.0, 3.0, 5.0, 7.0]), np.array([2.0, 4.0]))
    assert mixed.floor == pytest.approx(1 / 15)


def _two_level_exact(xa: np.ndarray, xb: np.ndarray | None = None) -> dict[float, float]:
    """Exact law of the run mean (or of a - b) of per-image means: every image draw (shared), every run draw of
    each checkpoint, all equally likely."""
    r, n = xa.shape
    law: dict[float, float] = {}
    img_draws = list(itertools.product(range(n), repeat=n))
    runs_a = list(itertools.product(range(r), repeat=r))
    runs_b = [()] if xb is None else list(itertools.product(range(xb.shape[0]), repeat=xb.shape[0]))
    for imgs in img_draws:
        for ra in runs_a:
            for rb in runs_b:
                v = np.mean([xa[k, list(imgs)].mean() for k in ra])
                if xb is not None:
                    v -= np.mean([xb[k, list(imgs)].mean() for k in rb])
                key = round(float(v), 9)
                law[key] = law.get(key, 0.0) + 1.0 / (len(img_draws) * len(runs_a) * len(runs_b))
    return law


def test_two_level_bootstrap_of_the_run_mean_matches_exact_enumeration():
    xa = np.array([[0.0, 3.0], [1.0, 7.0]])  # 2 runs x 2 images
    xb = np.array([[2.0, 2.0], [0.0, 5.0]])
    b = 40000
    w = resample_counts(2, b, seed=11)  # one image-count vector per resample, shared by every run
    boot_a = np.stack([mean_statistic(x)(w) for x in xa])
    boot_b = np.stack([mean_statistic(x)(w) for x in xb])
    sampled = run_mean_values(boot_a, run_draws(2, b, [5, 0]))
    for v, pr in _two_level_exact(xa).items():
        assert np.mean(np.isclose(sampled, v)) == pytest.approx(pr, abs=0.01)
    # the difference: same image draws for both, runs drawn independently (never paired by seed label)
    d = run_mean_values(boot_a, run_draws(2, b, [5, 0])) - run_mean_values(boot_b, run_draws(2, b, [5, 1]))
    law = _two_level_exact(xa, xb)
    for v, pr in law.items():
        assert np.mean(np.isclose(d, v)) == pytest.approx(pr, abs=0.01)
    got = replicate_difference(xa.mean(1), boot_a, xb.mean(1), boot_b, 2, seed=5)
    lo, hi = np.quantile(d, [0.025, 0.975])
    assert (got.bootstrap_low, got.bootstrap_high) == pytest.approx((lo, hi))
    assert got.value == pytest.approx(xa.mean() - xb.mean())


def test_replicate_interval_t_component_and_single_run_note():
    assert t_quantile(0.95, 2) == pytest.approx(4.3027, abs=1e-4)
    rng = np.random.default_rng(12)
    full = np.array([20.0, 23.0, 21.5])
    boot = full[:, None] + rng.normal(0, 0.8, size=(3, 2000))  # image noise around each run's value
    got = replicate_interval(full, boot, 500, seed=1)
    assert got.runs == 3 and got.value == pytest.approx(21.5) and got.sd == pytest.approx(np.std(full, ddof=1))
    assert got.t == pytest.approx(4.3027, abs=1e-4) and got.covers.startswith("test images and training runs")
    var, z = got.sd**2 / 3, 1.959963984540054
    extra = got.t**2 * var - z**2 * (2 / 3) * var
    assert got.value - got.low == pytest.approx(math.sqrt((got.value - got.bootstrap_low) ** 2 + extra))
    assert got.high - got.value == pytest.approx(math.sqrt((got.bootstrap_high - got.value) ** 2 + extra))
    assert got.low < full.min() and got.high > full.max()  # wider than the three runs' range
    one = replicate_interval(full[:1], boot[:1], 500, seed=1)
    assert one.covers == SINGLE_RUN_NOTE and math.isnan(one.sd)
    assert (one.low, one.high) == pytest.approx(tuple(np.quantile(boot[0], [0.025, 0.975])))


def test_replicate_interval_covers_the_run_mean_with_three_runs():
    """Runs N(mu, 1) without image noise: the t-widened interval covers mu about 95% of the time, the two-level
    percentile interval of three runs far less (400 repetitions, 400 resamples; under a second)."""
    rng = np.random.default_rng(13)
    hit_t = hit_pct = 0
    for rep in range(400):
        full = rng.normal(10.0, 1.0, size=3)
        got = replicate_interval(full, np.repeat(full[:, None], 400, axis=1), 100, seed=rep)
        hit_t += got.low <= 10.0 <= got.high
        hit_pct += got.bootstrap_low <= 10.0 <= got.bootstrap_high
    assert 0.9 <= hit_t / 400 <= 0.995 and hit_pct / 400 < 0.8


def test_replicate_difference_with_runs_and_with_single_runs():
    rng = np.random.default_rng(14)
    a, b = np.array([30.0, 31.2, 29.7]), np.array([28.1, 27.9, 29.0])
    boot_a = a[:, None] + rng.normal(0, 0.5, size=(3, 1000))
    boot_b = b[:, None] + rng.normal(0, 0.5, size=(3, 1000))
    got = replicate_difference(a, boot_a, b, boot_b, 200, seed=3)
    assert got.test is not None and got.test.floor == pytest.approx(0.1)
    assert got.prob_improvement == pytest.approx(np.mean([x > y for x in a for y in b]))
    assert got.low <= got.bootstrap_low and got.high >= got.bootstrap_high
    lower = replicate_difference(a, boot_a, b, boot_b, 200, seed=3, lower_is_better=True)
    assert lower.prob_improvement == pytest.approx(1 - got.prob_improvement)
    one_vs_three = replicate_difference(a[:1], boot_a[:1], b, boot_b, 200, seed=3)
    assert one_vs_three.test.floor == pytest.approx(0.25) and "taken as the other's" in one_vs_three.covers
    single = replicate_difference(a[:1], boot_a[:1], b[:1], boot_b[:1], 200, seed=3)
    assert single.test is None and "test images only" in single.covers
    assert (single.low, single.high) == pytest.approx(percentile_interval(boot_a[0] - boot_b[0]))


# ---- every field of every branch, against computations written out here ----
def _monte_carlo_sign_flip(d: np.ndarray, permutations: int, seed: int) -> float:
    """The documented Monte Carlo p: seeded uniform signs over the non-zero d, (1 + #extreme) / (1 + B)."""
    nz = d[d != 0]
    signs = np.random.default_rng(seed).integers(0, 2, size=(permutations, nz.size)) * 2.0 - 1.0
    extreme = int(np.sum(np.abs(signs @ nz) >= abs(nz.sum()) - 1e-9 * max(1.0, np.abs(nz).sum())))
    return (1 + extreme) / (1 + permutations)


def test_sign_flip_fields_of_each_branch(monkeypatch):
    assert sign_flip_test(np.zeros(5)) == PairedTest(0.0, 1.0, "exact sign-flip", 1.0, 0, "no image differs")
    assert sign_flip_test(np.array([])) == PairedTest(0.0, 1.0, "exact sign-flip", 1.0, 0, "no image differs")
    d = np.array([1.0, 2.0, 0.0, -0.5])
    # 8 sign vectors of (1, 2, -0.5): |sum| >= 2.5 for (+,+,-), (-,-,+) and the two with |sum| 3.5: p = 4 / 8;
    # the largest |sum| 3.5 comes from 2 of the 8: floor 1 / 4
    assert sign_flip_test(d) == PairedTest(0.625, 0.5, "exact sign-flip", 0.25, 0, "3 images differ")
    # Monte Carlo on integer differences (many |sums| tie the observed one exactly), in one chunk and in chunks
    d = np.array([1.0, -1.0, 2.0, 1.0, 0.0, -2.0, 1.0] * 4)
    want = _monte_carlo_sign_flip(d, 300, 4)
    expect = PairedTest(float(d.mean()), want, "Monte Carlo sign-flip", 1 / 301, 300, "24 images differ")
    assert sign_flip_test(d, 300, 4, exact_limit=10) == expect
    monkeypatch.setattr(significance, "CHUNK_ELEMENTS", 24 * 7)  # chunks of 7 sign vectors, the last one of 6
    assert sign_flip_test(d, 300, 4, exact_limit=10) == expect
    assert sign_flip_test(d, 300, exact_limit=10) == sign_flip_test(d, 300, 0, exact_limit=10)  # seed 0 by default
    assert sign_flip_test(d, exact_limit=10).permutations == 1999


def test_paired_mean_test_branches_and_what_it_passes_on():
    same = np.array([0.0, 1.0, 1.0, 0.0])
    assert paired_mean_test(same, same) == PairedTest(0.0, 1.0, "exact McNemar", 1.0, 0, "0 vs 0 discordant images")
    a, b = np.array([100.0, 100, 0, 100, 0]), np.array([0.0, 100, 0, 0, 0])
    assert paired_mean_test(a, b) == PairedTest(
        40.0, mcnemar_exact(2, 0), "exact McNemar", 0.5, 0, "2 vs 0 discordant images"
    )
    assert paired_mean_test(np.zeros(5), b).method == "exact McNemar"  # an all-zero side fits any scale
    assert paired_mean_test(a, b / 100.0).method == "exact sign-flip"  # two different scales: not McNemar
    assert paired_mean_test(a, np.array([0.0, 50, 0, 0, 0])).method == "exact sign-flip"  # one side not 0/1
    rng = np.random.default_rng(8)
    xa, xb = rng.normal(size=30), rng.normal(size=30)
    got = paired_mean_test(xa, xb, 300, 5)
    assert got == sign_flip_test(xa - xb, 300, 5) and got.permutations == 300
    assert got.p_value == _monte_carlo_sign_flip(xa - xb, 300, 5)


def test_paired_test_dispatches_and_passes_every_option():
    rng = np.random.default_rng(9)
    xa, xb = rng.normal(size=30), rng.normal(size=30)
    got = paired_test(mean_statistic(xa), mean_statistic(xb), 30, 300, 5)
    assert got == sign_flip_test(xa - xb, 300, 5)
    assert paired_test(mean_statistic(xa), mean_statistic(xb), 30) == sign_flip_test(xa - xb)  # defaults
    groups = np.repeat([0, 1], [14, 6])
    sa, sb = rng.normal(size=20), rng.normal(size=20)
    a, b = MeanOverSetsStatistic(sa, groups, "auroc"), MeanOverSetsStatistic(sb, groups, "auroc")
    for kw in ({}, {"permutations": 300, "seed": 3}, {"permutations": 300, "seed": 3, "stop_after": 2}):
        assert paired_test(a, b, 20, **kw) == swap_permutation_test(a, b, 20, **kw), kw
    assert paired_test(a, b, 20, 300, 3) != paired_test(a, b, 20, 300, 4)  # the seed reaches the draws
    m = mean_statistic(sa)
    assert paired_test(m, m, 20, 300, 3).method == "exact sign-flip"


def _monte_carlo_swaps(a: np.ndarray, b: np.ndarray, permutations: int, seed: int) -> np.ndarray:
    """The seeded swap vectors' hits written out for two per-image means: swapping image i's outputs where s_i = 1
    turns the difference of means into mean((a - b) (1 - 2 s)); a hit is |that| >= |mean(a - b)| (rounding aside)."""
    s = np.random.default_rng(seed).integers(0, 2, size=(permutations, a.size)).astype(np.float64)
    d = np.mean(a - b)
    return np.abs(((a - b)[None, :] * (1.0 - 2.0 * s)).mean(axis=1)) >= abs(d) - 1e-9 * max(1.0, abs(d))


def test_swap_permutation_fields_in_chunks_and_the_sequential_stop():
    a = np.array([1.0, 0, 1, 1, 0, 1, 2, 1, 0, 1, 1, 1, 0, 1, 2, 1, 1, 0, 1, 1])
    b = np.array([0.0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0])
    sa, sb = mean_statistic(a), mean_statistic(b)
    hits = _monte_carlo_swaps(a, b, 450, 6)  # chunks of 200 swaps: 200, 200, 50
    d = float(a.mean() - b.mean())
    want = PairedTest(d, (1 + int(hits.sum())) / 451, "Monte Carlo swap permutation", 1 / 451, 450)
    assert swap_permutation_test(sa, sb, 20, 450, 6) == want
    assert swap_permutation_test(sa, sb, 20, 450) == swap_permutation_test(sa, sb, 20, 450, 0)  # seed 0 by default
    assert swap_permutation_test(sa, sb, 20).permutations == 1999
    h = int(hits[:200].sum()) + 2  # the sequential stop lands in the second chunk
    at = int(np.flatnonzero(hits)[h - 1]) + 1
    detail = f"stopped at the {h}th as extreme (Besag-Clifford)"
    got = swap_permutation_test(sa, sb, 20, 450, 6, stop_after=h)
    assert got == PairedTest(d, h / at, "Monte Carlo swap permutation", 1 / 451, at, detail)
    total = int(hits.sum())
    assert swap_permutation_test(sa, sb, 20, 450, 6, stop_after=total) == PairedTest(
        d, total / (int(np.flatnonzero(hits)[-1]) + 1), "Monte Carlo swap permutation", 1 / 451,
        int(np.flatnonzero(hits)[-1]) + 1, f"stopped at the {total}th as extreme (Besag-Clifford)",
    )  # fmt: skip
    assert swap_permutation_test(sa, sb, 20, 450, 6, stop_after=total + 1) == want  # never reached: the plain p


def test_format_p_and_holm_ties():
    got = [format_p(p) for p in (float("nan"), float("inf"), 1e-4, 3e-5)]
    assert got == ["n/a", "n/a", "0.0001", "3.0e-05"]  # two digits below 1e-4: '3.0e-05', not '3e-05'
    # ties keep their input order (stable): the adjusted values are the same either way, the order of equal p's too
    assert holm([0.01, 0.04, 0.01, 0.03]).tolist() == pytest.approx([0.04, 0.06, 0.04, 0.06])
    assert holm(np.array([1, 0], dtype=np.int64)).tolist() == [1.0, 0.0]
    p32 = np.array([0.0137, 0.0171, 0.0133], dtype=np.float32)  # computed in float64 whatever the input's dtype
    p64 = p32.astype(np.float64)
    want = np.empty(3)
    want[[2, 0, 1]] = np.maximum.accumulate([3 * p64[2], 2 * p64[0], p64[1]])  # sorted: 0.0133, 0.0137, 0.0171
    assert holm(p32).dtype == np.float64 and holm(p32).tolist() == want.tolist()


def test_exact_swap_fields_and_describe():
    a, b = np.array([1.0, 0.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0, 0.0])
    # all 16 swaps: swapping image i flips the sign of its difference (1, 0, 0, 1) / 4; |mean| = 0.5 for 4 of the
    # 16 (both differing images unswapped or both swapped, with either choice on the two equal ones)
    diffs = [abs(((a - b) * (1 - 2 * np.array(s))).mean()) for s in itertools.product([0, 1], repeat=4)]
    p = np.mean(np.array(diffs) >= 0.5 - 1e-9)
    want = PairedTest(0.5, p, "exact swap permutation", p, 0, "all 16 swaps of 4 images")
    assert p == 0.5 and swap_permutation_test(mean_statistic(a), mean_statistic(b), 4, exact_limit=4) == want
    assert swap_permutation_test(mean_statistic(a), mean_statistic(b), 4, 50, exact_limit=3).permutations == 50
    assert PairedTest(0.1, 0.5, "exact sign-flip", 0.0005).describe() == "p = 0.50 (exact sign-flip)"
    assert PairedTest(0.1, 0.02, "exact McNemar", 0.001, 0, "3 vs 9 discordant images").describe() == (
        "p = 0.02 (exact McNemar, 3 vs 9 discordant images, smallest possible p 0.001)"
    )
    mc = PairedTest(0.1, 0.0005, "Monte Carlo sign-flip", 0.0005, 1999, "30 images differ")
    assert mc.describe() == (
        "p = 0.0005 (Monte Carlo sign-flip, 30 images differ, 1,999 permutations, smallest possible p 0.0005)"
    )
    assert significance.binomial_tail(0, 0) == 1.0 and significance.binary_outcomes(np.zeros(3)) == 1.0
