"""Paired tests of a difference between two checkpoints on the same test images, Holm's adjustment, and p-values
printed as what they are (docs/report_statistics.md, issue 24).

- A metric that is a per-image mean (bootstrap.MeanStatistic: top-1 err, loc acc, FGSM top-1, CIDEr, ROUGE-L):
  the exact paired test of the per-image differences d_i. With 0/1 outcomes (every value 0 or one constant) it is
  the exact McNemar test, p = min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2), b and c the discordant
  images; otherwise the sign-flip test, P(|sum s_i d_i| >= |sum d_i|) over the 2^k sign vectors of the k non-zero
  d_i, enumerated when k <= EXACT_SIGN_FLIP_LIMIT, else estimated from seeded random sign vectors. (McNemar is the
  sign-flip test of 0/1 outcomes: its null distribution is the binomial one.)
- Any other metric (mAP, MaxBoxAcc, BLEU, METEOR, OOD): the paired swap-permutation test. Under the null the two
  checkpoints' outputs on an image are exchangeable, so each permutation swaps each image's outputs between the
  two with probability 1/2 and recomputes the metric difference; the statistic's `pooled(other)` (a statistic over
  the 2n outputs) evaluated with counts [1 - s, s] and [s, 1 - s] gives the two swapped metrics. On a mean
  statistic it is the sign-flip test.
- Monte Carlo p-values are (1 + #extreme) / (1 + B) (never 0; the floor 1 / (1 + B) is printed with them), or
  Besag and Clifford's sequential p = h / L when the h-th extreme difference came at permutation L (`stop_after`).
- Holm's step-down adjustment over the family of every paired difference one report prints; `family_permutations`
  picks B so that the smallest Monte Carlo p, 1 / (1 + B), lies below Holm's first threshold alpha / m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bootstrap import MeanStatistic, Statistic

ALPHA = 0.05
DEFAULT_PERMUTATIONS = 1999  # p floor 1/2000 = 0.0005
EXACT_SIGN_FLIP_LIMIT = 20  # 2^20 sign vectors enumerated at most
EXACT_SWAP_LIMIT = 12  # 2^12 swaps of a non-mean metric enumerated at most (each is one evaluation per checkpoint)
CHUNK_ELEMENTS = 4_000_000  # random signs / swaps held at once
FLOOR_SHOWN = 0.001  # an exact test's floor is printed from this size up (e.g. 0.1: 3 vs 3 runs)


@dataclass(frozen=True)
class PairedTest:
    """a - b on the same images and its two-sided p-value; `floor` is the smallest p the test can give
    (exact: the probability of the most extreme outcome; Monte Carlo: 1 / (1 + permutations))."""

    difference: float
    p_value: float
    method: str
    floor: float
    permutations: int = 0  # random permutations / sign vectors drawn (0: exact)
    detail: str = ""  # e.g. '24 vs 6 discordant images'

    def describe(self) -> str:
        """'p = 0.0014 (exact McNemar, 24 vs 6 discordant images)' and the like."""
        how = self.method + (f", {self.detail}" if self.detail else "")
        if self.permutations:
            how += f", {self.permutations:,} permutations"
        if self.permutations or self.floor >= FLOOR_SHOWN:
            how += f", smallest possible p {format_p(self.floor)}"
        return f"p = {format_p(self.p_value)} ({how})"


def format_p(p: float) -> str:
    """Two significant digits, never rounded to 0 and never '<' something the test cannot give."""
    if not np.isfinite(p):
        return "n/a"
    if p >= 0.1:
        return f"{p:.2f}"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def binomial_tail(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly (integer sums)."""
    return float(sum(math.comb(n, i) for i in range(0, k + 1))) / float(2**n) if n else 1.0


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p from the discordant counts: min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c, 1/2)."""
    return min(1.0, 2.0 * binomial_tail(min(b, c), b + c))


def _tolerance(d: np.ndarray) -> float:
    return 1e-9 * max(1.0, float(np.sum(np.abs(d))))  # sums equal but for rounding count as extreme


def sign_flip_test(
    d: np.ndarray, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0, exact_limit: int = EXACT_SIGN_FLIP_LIMIT
) -> PairedTest:
    """Sign-flip test of per-image differences d (n,): the statistic is their mean; zeros never change sign."""
    d = np.asarray(d, dtype=np.float64).ravel()
    mean = float(d.mean()) if d.size else 0.0
    nz = d[d != 0]
    t, tol = abs(float(nz.sum())), _tolerance(nz)
    if nz.size == 0:
        return PairedTest(mean, 1.0, "exact sign-flip", 1.0, 0, "no image differs")
    if nz.size <= exact_limit:
        sums = np.zeros(1)
        for x in nz:  # every sign vector: each step doubles the list of partial sums
            sums = np.concatenate([sums + x, sums - x])
        p = float(np.mean(np.abs(sums) >= t - tol))
        floor = float(np.mean(np.abs(sums) >= np.abs(sums).max() - tol))
        return PairedTest(mean, p, "exact sign-flip", floor, 0, f"{nz.size} images differ")
    rng = np.random.default_rng(seed)
    extreme, step = 0, max(1, CHUNK_ELEMENTS // nz.size)
    for start in range(0, permutations, step):
        signs = rng.integers(0, 2, size=(min(step, permutations - start), nz.size)) * 2.0 - 1.0
        extreme += int(np.sum(np.abs(signs @ nz) >= t - tol))
    p = (1 + extreme) / (1 + permutations)
    return PairedTest(
        mean, p, "Monte Carlo sign-flip", 1 / (1 + permutations), permutations, f"{nz.size} images differ"
    )


def binary_outcomes(x: np.ndarray) -> float | None:
    """The constant c when every value is 0 or c (0/1 outcomes, e.g. 100 * correct), else None."""
    nz = np.unique(x[x != 0])
    return float(nz[0]) if nz.size == 1 else (1.0 if nz.size == 0 else None)


def paired_mean_test(
    x_a: np.ndarray, x_b: np.ndarray, permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0
) -> PairedTest:
    """mean(x_a) - mean(x_b) of per-image values on the same images: exact McNemar for 0/1 outcomes with one
    scale, else the sign-flip test."""
    x_a, x_b = np.asarray(x_a, dtype=np.float64).ravel(), np.asarray(x_b, dtype=np.float64).ravel()
    if x_a.shape != x_b.shape:
        raise ValueError(f"paired values need the same images, got {x_a.size} and {x_b.size}")
    ca, cb = binary_outcomes(x_a), binary_outcomes(x_b)
    if ca is not None and cb is not None and (ca == cb or not (x_a.any() and x_b.any())):
        b, c = int(np.sum((x_a != 0) & (x_b == 0))), int(np.sum((x_a == 0) & (x_b != 0)))
        k = b + c
        floor = mcnemar_exact(0, k) if k else 1.0
        diff = float(x_a.mean() - x_b.mean())
        return PairedTest(diff, mcnemar_exact(b, c), "exact McNemar", floor, 0, f"{b} vs {c} discordant images")
    return sign_flip_test(x_a - x_b, permutations, seed)


def swap_permutation_test(
    stat_a: Statistic,
    stat_b: Statistic,
    n: int,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    exact_limit: int = EXACT_SWAP_LIMIT,
    stop_after: int | None = None,
) -> PairedTest:
    """Paired swap-permutation test of stat_a - stat_b on the same n images (aligned order).

    stat_a.pooled(stat_b) is the statistic over the 2n outputs; a swap vector s (n,) of 0/1 gives the metric of
    a's outputs swapped with b's where s = 1 as pooled([1 - s, s]), and b's as pooled([s, 1 - s]). All 2^n swaps
    when n <= exact_limit; else `permutations` seeded random swaps (each image swapped with probability 1/2),
    p = (1 + #|d*| >= |d|) / (1 + permutations); `stop_after` h: stop at the permutation L that gives the h-th
    extreme difference, p = h / L (Besag and Clifford 1991: valid, and cheap when p is large)."""
    pooled_fn = getattr(stat_a, "pooled", None)
    if pooled_fn is None:
        raise ValueError(f"{type(stat_a).__name__} has no pooled(other): it cannot be swap-permuted")
    pooled = pooled_fn(stat_b)
    ones = np.ones((1, n))
    d = float(stat_a(ones)[0] - stat_b(ones)[0])

    def diffs(s: np.ndarray) -> np.ndarray:
        return pooled(np.hstack([1.0 - s, s])) - pooled(np.hstack([s, 1.0 - s]))

    tol = 1e-9 * max(1.0, abs(d))
    if n <= exact_limit:
        s = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(np.float64)
        all_d = diffs(s)
        p = float(np.mean(np.abs(all_d) >= abs(d) - tol))
        floor = float(np.mean(np.abs(all_d) >= np.abs(all_d).max() - tol))
        return PairedTest(d, p, "exact swap permutation", floor, 0, f"all {2**n} swaps of {n} images")
    rng = np.random.default_rng(seed)
    extreme, step = 0, max(1, min(200, CHUNK_ELEMENTS // (2 * n)))
    for start in range(0, permutations, step):
        size = min(step, permutations - start)
        hits = np.abs(diffs(rng.integers(0, 2, size=(size, n)).astype(np.float64))) >= abs(d) - tol
        if stop_after and extreme + int(hits.sum()) >= stop_after:
            at = start + int(np.flatnonzero(hits)[stop_after - extreme - 1]) + 1
            detail = f"stopped at the {stop_after}th as extreme (Besag-Clifford)"
            return PairedTest(d, stop_after / at, "Monte Carlo swap permutation", 1 / (1 + permutations), at, detail)
        extreme += int(hits.sum())
    p = (1 + extreme) / (1 + permutations)
    return PairedTest(d, p, "Monte Carlo swap permutation", 1 / (1 + permutations), permutations)


def paired_test(
    stat_a: Statistic,
    stat_b: Statistic,
    n: int,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    stop_after: int | None = None,
) -> PairedTest:
    """The report's test of a - b for one column: exact paired test for per-image means (both MeanStatistic),
    else the swap-permutation test (`stop_after` for it only)."""
    if isinstance(stat_a, MeanStatistic) and isinstance(stat_b, MeanStatistic):
        return paired_mean_test(stat_a.per_image, stat_b.per_image, permutations, seed)
    return swap_permutation_test(stat_a, stat_b, n, permutations, seed, stop_after=stop_after)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values: sorted p_(1) <= ... <= p_(m) get max_{j <= i} min(1, (m - j + 1) p_(j));
    rejecting where adjusted <= alpha is Holm's procedure at family-wise level alpha."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def family_permutations(tests: int, alpha: float = ALPHA, minimum: int = DEFAULT_PERMUTATIONS) -> int:
    """Random permutations for a family of `tests` Monte Carlo tests: at least `minimum` and enough that the
    smallest p, 1 / (1 + B), lies below Holm's first threshold alpha / m (B >= m / alpha)."""
    return max(int(minimum), math.ceil(tests / alpha))
