"""The report's intervals and paired differences (issue 24, docs/report_statistics.md), for the rows that
table.build_rows made.

- Every run of every cell with per-image results is resampled in ONE `shared_bootstrap_values` call: all runs on
  the same images (same n, same strata) get the same image-count matrix, so the runs of one cell and of two
  checkpoints are resampled together.
- A cell of one run gets `interval_from_values` (bias-corrected for mAP and MaxBoxAcc, the bootstrap bias kept;
  percentile otherwise) and covers the test images only (replicates.SINGLE_RUN_NOTE). A cell of several runs
  (replicates: records that differ only in the training seed) gets `replicate_interval` over its runs.
- Paired differences: every pair of checkpoints with a column on the same images is listed first (m pairs), the
  permutation count is `family_permutations(m)`; one run each: the interval from `difference_from_values` and
  the test `paired_test` (McNemar / sign-flip for per-image means, swap permutation with Besag-Clifford's stop
  after SWAP_STOP_AFTER extremes otherwise); several runs: `replicate_difference` (interval, P(A better) and the
  run-label permutation test). Holm's adjustment over the whole family.

Rows are duck-typed (table.Row: label, values, intervals, runs, run_values) so this module needs no import of
table.py (table.py imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bootstrap import MeanStatistic, Statistic, difference_from_values, interval_from_values, shared_bootstrap_values
from .per_image import per_image_statistic
from .replicates import replicate_difference, replicate_interval
from .significance import PairedTest, family_permutations, format_p, holm, paired_test

SWAP_STOP_AFTER = 20  # Besag-Clifford stop of the swap tests (significance.swap_permutation_test; the docs' advice)
CELL_SINGLE_RUN = "1 run: test images only"  # the in-cell form of replicates.SINGLE_RUN_NOTE


@dataclass
class CellSample:
    """One cell's runs on its images: sorted ids, each run's statistic, full-set values (R,), bootstrap (R, B)."""

    ids: list[str]
    stats: list[Statistic]
    full: np.ndarray
    boot: np.ndarray


@dataclass(frozen=True)
class Comparison:
    """One paired-difference line's numbers: later row (a) minus earlier row (b) in one column."""

    column: str
    label_a: str
    label_b: str
    value: float
    low: float
    high: float
    test: PairedTest
    n: int
    runs_a: int
    runs_b: int
    prob: tuple[float, float, float] | None = None  # P(a better than b) and its interval (several runs)
    covers: str = ""
    p_holm: float = float("nan")

    def line(self) -> str:
        """'<column>, a − b: d [lo, hi], p = ... (test), Holm-adjusted p = ...[; P(a better than b) = ...]; what
        it covers (n images)'."""
        out = (
            f"{self.column}, {self.label_a} − {self.label_b}: {self.value:+.2f} [{self.low:+.2f}, {self.high:+.2f}], "
            f"{self.test.describe()}, Holm-adjusted p = {format_p(self.p_holm)}"
        )
        if self.prob is not None:
            p, lo, hi = self.prob
            out += f"; P({self.label_a} better than {self.label_b}) = {p:.2f} [{lo:.2f}, {hi:.2f}]"
        return out + f"; {self.covers} ({self.n} images)"


def _cell_samples(
    measured: list[Any],
    cols: list[Any],
    by_path: dict[str, dict[str, Any]],
    resamples: int,
    seed: int,
    notes: list[str],
) -> dict[tuple[int, str], CellSample]:
    """Each cell's runs resampled (one shared draw for all runs on the same images), the cells' intervals filled."""
    cells = []  # (row index, column, [(ids, statistic) per run])
    for ri, r in enumerate(measured):
        for c in cols:
            paths = r.runs.get(c.title) or []
            got = [per_image_statistic(p, by_path[p], c.metric) for p in paths]
            if not got or any(g is None for g in got):
                continue
            if len({tuple(ids) for ids, _ in got}) > 1:
                notes.append(
                    f"No interval for {r.label} {c.title}: its runs scored different test images "
                    f"({', '.join(paths)}); re-run their evaluations on one test set."
                )
                continue
            cells.append((ri, c, got))
    flat = [(stat, len(ids)) for _, _, got in cells for ids, stat in got]
    boot = iter(shared_bootstrap_values(flat, resamples, seed)) if flat else iter(())
    samples: dict[tuple[int, str], CellSample] = {}
    for k, (ri, c, got) in enumerate(cells):
        vals = [next(boot) for _ in got]
        r = measured[ri]
        bad = [(v, rv, p) for (v, _), rv, p in zip(vals, r.run_values[c.title], r.runs[c.title]) if abs(v - rv) > 0.01]
        if bad:
            v, rv, p = bad[0]
            notes.append(
                f"No interval for {r.label} {c.title}: its per-image results give {v:.2f}, the record {rv:.2f} "
                f"({p}); re-run the evaluation."
            )
            continue
        ids, n = got[0][0], len(got[0][0])
        full = np.array([v for v, _ in vals])
        values = np.stack([b for _, b in vals])
        if len(got) == 1:
            r.intervals[c.title] = interval_from_values(got[0][1], n, float(full[0]), values[0], seed=seed)
        else:
            r.intervals[c.title] = replicate_interval(full, values, n, seed=[seed, k])
        samples[(ri, c.title)] = CellSample(ids, [s for _, s in got], full, values)
    return samples


def _compare(c: Any, a: CellSample, b: CellSample, labels: tuple[str, str], permutations: int, seed) -> Comparison:
    n = len(a.ids)
    if len(a.full) == 1 and len(b.full) == 1:
        d = difference_from_values(float(a.full[0]), a.boot[0], float(b.full[0]), b.boot[0], n)
        mean = isinstance(a.stats[0], MeanStatistic) and isinstance(b.stats[0], MeanStatistic)
        test = paired_test(a.stats[0], b.stats[0], n, permutations, seed, stop_after=None if mean else SWAP_STOP_AFTER)
        covers = "1 run each: the interval and the test cover the test images only"
        return Comparison(c.title, *labels, d.value, d.low, d.high, test, n, 1, 1, None, covers)
    rd = replicate_difference(a.full, a.boot, b.full, b.boot, n, seed=seed, lower_is_better=c.lower_is_better)
    assert rd.test is not None  # several runs on one side at least: the run-label test
    prob = (rd.prob_improvement, rd.prob_low, rd.prob_high)
    return Comparison(c.title, *labels, rd.value, rd.low, rd.high, rd.test, n, rd.runs_a, rd.runs_b, prob, rd.covers)


def add_intervals(
    measured: list[Any],
    cols: list[Any],
    records: list[tuple[Path, dict[str, Any]]],
    resamples: int,
    seed: int = 0,
    notes: list[str] | None = None,
) -> list[Comparison]:
    """Fill the measured rows' intervals (one shared draw for every run on the same images) and return the paired
    differences, Holm-adjusted over all of them: later row minus earlier row, per column, where both have
    per-image results on the same images."""
    notes = notes if notes is not None else []
    by_path = {str(p): rec for p, rec in records}
    samples = _cell_samples(measured, cols, by_path, resamples, seed, notes)
    pairs = [
        (c, j, i)
        for c in cols
        for i in range(len(measured))
        for j in range(i + 1, len(measured))
        if (j, c.title) in samples
        and (i, c.title) in samples
        and samples[(j, c.title)].ids == samples[(i, c.title)].ids
    ]
    permutations = family_permutations(len(pairs))  # listed first: B depends on the family's size m
    out = [
        _compare(
            c,
            samples[(j, c.title)],
            samples[(i, c.title)],
            (measured[j].label, measured[i].label),
            permutations,
            [seed, k],
        )
        for k, (c, j, i) in enumerate(pairs)
    ]
    adjusted = holm([x.test.p_value for x in out]) if out else []
    return [Comparison(**{**x.__dict__, "p_holm": float(p)}) for x, p in zip(out, adjusted)]
