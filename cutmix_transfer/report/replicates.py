"""Several training runs per checkpoint (replicates: records that differ only in the training seed), every run
scored on the same test images: intervals and tests that cover the training randomness as well as the images
(docs/report_statistics.md, issue 24).

Input per checkpoint: each run's metric on all test images, `full` (R,), and on the report's shared bootstrap
resamples of the images, `boot` (R, B) (bootstrap.shared_bootstrap_values: the same image-count vector b for
every run of every checkpoint on those images, so column b of every run is the same resampled image set).

- Two-level bootstrap: resample b keeps its image-count vector for every run of both checkpoints and draws R runs
  with replacement, independently for each checkpoint (`run_draws`); runs are never paired by seed label (seed i of
  two checkpoints is not a matched unit). The run mean on resample b is the mean of the drawn runs' values there.
- With few runs that bootstrap's run part is too narrow (a percentile interval of 3 runs lies inside their
  range), so the printed interval widens the two-level percentile interval by a Student-t run component
  (`widen`): around the run mean m, each half-width h (m - low, high - m of the two-level interval) becomes
  sqrt(h^2 + max(0, t^2 V - z^2 V_boot)): V = s^2 / R is the run mean's variance over training runs, V_boot =
  (R - 1) / R * V the part the bootstrap of R runs has, z = 1.96 and t Student's 97.5% point with R - 1 degrees
  of freedom (4.30 at 3 runs). The run part thus enters with Student's width instead of the bootstrap's, the
  image part as the bootstrap has it; as R grows, t -> z and the interval becomes the two-level one. A difference
  uses V = s_a^2 / R_a + s_b^2 / R_b with Welch's degrees of freedom; a checkpoint with one run borrows the other's
  run SD (equal run variance assumed; its degrees of freedom are the other's R - 1).
- One run per checkpoint: the interval covers the test images only, and `covers` says so.
- Multi-run p-value: the exact permutation test of run labels on the runs' full-set values (all C(Ra + Rb, Ra)
  relabelings), with its floor (2 / 20 = 0.1 for 3 vs 3): image resampling does not enter it.
- Probability of improvement P(A > B) (Agarwal et al., NeurIPS 2021, rliable's `probability_of_improvement`):
  the share of run pairs (i, j) with a_i > b_j, ties counting one half (the Mann-Whitney U / (Ra Rb)), averaged
  over tasks when given (runs, tasks) matrices.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .bootstrap import CONFIDENCE, percentile_interval
from .significance import PairedTest

SINGLE_RUN_NOTE = "1 run: the interval covers the test images only, not training randomness"


def t_quantile(confidence: float, df: float) -> float:
    """Student's t two-sided `confidence` point (4.303 at 95%, 2 degrees of freedom)."""
    from scipy.stats import t  # imported here: only replicate cells need it

    return float(t.ppf(0.5 + confidence / 2.0, df))


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def run_draws(runs: int, resamples: int, seed) -> np.ndarray:
    """(resamples, runs) counts: how often each run is drawn (R draws with replacement) on each resample; seed: an
    int or a sequence of ints (numpy SeedSequence), one stream per checkpoint so draws are independent."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(runs, np.full(runs, 1.0 / runs), size=resamples).astype(np.float64)


def run_mean_values(boot: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """(B,) run mean on each resample: the drawn runs' values (boot (R, B)) averaged with the run counts (B, R)."""
    boot = np.atleast_2d(np.asarray(boot, dtype=np.float64))
    return np.einsum("rb,br->b", boot, draws) / boot.shape[0]


def covers(runs_a: int, runs_b: int | None = None) -> str:
    """What an interval over these runs covers, as the cell's note prints it."""
    counts = [runs_a] if runs_b is None else [runs_a, runs_b]
    if max(counts) == 1:
        return SINGLE_RUN_NOTE if runs_b is None else "1 run each: the interval covers the test images only"
    note = f"test images and training runs ({' vs '.join(map(str, counts))} runs)"
    return note if min(counts) > 1 else note[:-1] + "; the single run's run variance taken as the other's)"


def widen(value: float, low: float, high: float, var: float, boot_var: float, t: float, confidence: float):
    """The two-level interval [low, high] around value, its run part at Student's width (module docstring)."""
    extra = max(0.0, t * t * var - _z(confidence) ** 2 * boot_var)
    lo_h, hi_h = max(0.0, value - low), max(0.0, high - value)
    return value - math.sqrt(lo_h**2 + extra), value + math.sqrt(hi_h**2 + extra)


@dataclass(frozen=True)
class ReplicateInterval:
    """A cell over runs: the run mean (each run's metric on all images), its SD across runs, the printed interval
    (two-level bootstrap widened by the t run component), the two-level percentile interval, what it covers."""

    value: float
    low: float
    high: float
    runs: int
    sd: float  # across runs, ddof 1 (nan with one run)
    t: float  # Student's point used (nan with one run)
    bootstrap_low: float
    bootstrap_high: float
    n: int
    resamples: int
    covers: str


def replicate_interval(
    full: np.ndarray, boot: np.ndarray, n: int, seed=0, confidence: float = CONFIDENCE
) -> ReplicateInterval:
    """The cell's interval from its runs' full-set values (R,) and shared-draw bootstrap values (R, B)."""
    full = np.asarray(full, dtype=np.float64).ravel()
    boot = np.atleast_2d(np.asarray(boot, dtype=np.float64))
    r, b = boot.shape
    if r != full.size:
        raise ValueError(f"{full.size} full-set values for {r} runs of bootstrap values")
    m = float(full.mean())
    values = run_mean_values(boot, run_draws(r, b, seed))
    lo, hi = percentile_interval(values, confidence)
    if r == 1:
        return ReplicateInterval(m, lo, hi, 1, math.nan, math.nan, lo, hi, n, b, covers(1))
    sd = float(full.std(ddof=1))
    t = t_quantile(confidence, r - 1)
    var = sd * sd / r
    wlo, whi = widen(m, lo, hi, var, (r - 1) / r * var, t, confidence)
    return ReplicateInterval(m, wlo, whi, r, sd, t, lo, hi, n, b, covers(r))


def run_label_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Exact permutation test of run labels: mean(a) - mean(b) against every split of the pooled run values into
    groups of len(a) and len(b); two-sided p = share of splits with |difference| >= the observed one."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    pooled, ra = np.concatenate([a, b]), a.size
    total = pooled.sum()
    splits = np.array(list(itertools.combinations(range(pooled.size), ra)), dtype=int)
    sums = pooled[splits].sum(axis=1)
    d = sums / ra - (total - sums) / b.size
    obs = float(a.mean() - b.mean())
    tol = 1e-9 * max(1.0, float(np.abs(pooled).sum()))
    p = float(np.mean(np.abs(d) >= abs(obs) - tol))
    floor = float(np.mean(np.abs(d) >= np.abs(d).max() - tol))
    detail = f"{ra} vs {b.size} runs, {len(splits)} relabelings"
    return PairedTest(obs, p, "exact run-label permutation", floor, 0, detail)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) as rliable defines it: per task the share of run pairs with x > y, ties one half, then the mean
    over tasks; x (Rx,) or (Rx, tasks), y (Ry,) or (Ry, tasks). For a lower-is-better metric pass -x, -y."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x, y = (x[:, None], y[:, None]) if x.ndim == 1 else (x, y)
    diff = x[:, None, :] - y[None, :, :]  # (Rx, Ry, tasks)
    wins = (diff > 0).sum(axis=(0, 1)) + 0.5 * (diff == 0).sum(axis=(0, 1))
    return float(np.mean(wins / (x.shape[0] * y.shape[0])))


@dataclass(frozen=True)
class ReplicateDifference:
    """a - b of two cells' run means: printed interval, two-level percentile interval, test, P(a > b) across runs
    (better = higher unless lower_is_better) and its two-level percentile interval, what it covers."""

    value: float
    low: float
    high: float
    bootstrap_low: float
    bootstrap_high: float
    test: PairedTest | None  # run-label permutation (None: one run each; use significance.paired_test)
    prob_improvement: float
    prob_low: float
    prob_high: float
    runs_a: int
    runs_b: int
    n: int
    resamples: int
    covers: str


def _weighted_improvement(a: np.ndarray, b: np.ndarray, da: np.ndarray, db: np.ndarray) -> np.ndarray:
    """(B,) P(a > b) on each resample: run pairs weighted by their draw counts, values at that image resample."""
    diff = a.T[:, :, None] - b.T[:, None, :]  # (B, Ra, Rb)
    score = (diff > 0) + 0.5 * (diff == 0)
    return np.einsum("bij,bi,bj->b", score, da, db) / (a.shape[0] * b.shape[0])


def replicate_difference(
    a_full: np.ndarray,
    a_boot: np.ndarray,
    b_full: np.ndarray,
    b_boot: np.ndarray,
    n: int,
    seed=0,
    confidence: float = CONFIDENCE,
    lower_is_better: bool = False,
) -> ReplicateDifference:
    """a - b over runs: the same image draws (column b of both boots), runs drawn independently per checkpoint
    (seeds [seed, 0] and [seed, 1]), widened by the t run component (Welch); the run-label test unless both have
    one run (then the images' paired test is the one to print: significance.paired_test)."""
    a_full, b_full = (np.asarray(v, dtype=np.float64).ravel() for v in (a_full, b_full))
    a_boot, b_boot = (np.atleast_2d(np.asarray(v, dtype=np.float64)) for v in (a_boot, b_boot))
    ra, rb, bsz = a_boot.shape[0], b_boot.shape[0], a_boot.shape[1]
    if b_boot.shape[1] != bsz or a_full.size != ra or b_full.size != rb:
        raise ValueError("both checkpoints need values on the same resamples, one full-set value per run")
    seeds = [seed] if isinstance(seed, int) else list(seed)
    da, db = run_draws(ra, bsz, [*seeds, 0]), run_draws(rb, bsz, [*seeds, 1])
    value = float(a_full.mean() - b_full.mean())
    lo, hi = percentile_interval(run_mean_values(a_boot, da) - run_mean_values(b_boot, db), confidence)
    sign = -1.0 if lower_is_better else 1.0
    prob = probability_of_improvement(sign * a_full, sign * b_full)
    p_lo, p_hi = percentile_interval(_weighted_improvement(sign * a_boot, sign * b_boot, da, db), confidence)
    wlo, whi, test = lo, hi, None
    if max(ra, rb) > 1:
        sa = float(a_full.std(ddof=1)) if ra > 1 else float(b_full.std(ddof=1))
        sb = float(b_full.std(ddof=1)) if rb > 1 else sa
        va, vb = sa * sa / ra, sb * sb / rb
        if min(ra, rb) > 1:
            den = va * va / (ra - 1) + vb * vb / (rb - 1)
            df = (va + vb) ** 2 / den if den > 0 else ra + rb - 2
        else:
            df = max(ra, rb) - 1
        boot_var = (ra - 1) / ra * va + (rb - 1) / rb * vb
        wlo, whi = widen(value, lo, hi, va + vb, boot_var, t_quantile(confidence, df), confidence)
        test = run_label_test(a_full, b_full)
    return ReplicateDifference(value, wlo, whi, lo, hi, test, prob, p_lo, p_hi, ra, rb, n, bsz, covers(ra, rb))
