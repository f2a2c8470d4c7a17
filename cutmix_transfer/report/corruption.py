"""The report's corruption-robustness cells (tools/corruption_eval.py records, docs/corruption_protocol.md "In the
report"): each headline metric read back as a statistic over the clean images, the per-corruption figure, the
notes naming what a partial mCE covers, and the published reference values that `--paper` shows.

Resampling is by clean image: a draw carries every corruption x severity version of an image together (one
per_image.csv row). With every version of every image evaluated, each headline metric is linear in the per-image
0/1 errors err_i(s, c), so it is the mean over images of a per-image score:
- mCE = mean_c 100 sum_s E(s, c) / sum_s A(s, c), E(s, c) = 100 mean_i err_i(s, c), A the AlexNet errors
  (percent) -> score_i = 100 mean_c [100 sum_s err_i(s, c) / sum_s A(s, c)];
- relative mCE: the same with err_i(s, c) - clean_err_i and A(s, c) - A_clean;
- CIFAR-C mean error (AugMix) and the unnormalised mean error: score_i = 100 mean_c mean_s err_i(s, c).
Such a metric is a `mean_statistic`, so the report's paired test is the sign-flip test on the per-image
differences. With some versions not evaluated (skipped unreadable images) the errors are ratios of sums over
different images: the metric is then recomputed from weighted sums (`SumsStatistic`), exactly the record's formula.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..corruptions.metrics import ALEXNET_CLEAN_ERR, ALEXNET_ERR
from ..datasets.corruptions import ALL_CORRUPTIONS, CORRUPTIONS, SEVERITIES
from ..io import atomic_write_bytes
from ..results import PER_IMAGE_CSV
from .bootstrap import Statistic, SumsStatistic, mean_statistic
from .cells import CellKey, cell_key, data_label, newest_per_cell, protocol_label

PerImage = tuple[list[str], Statistic]
_SET_COLUMN = re.compile(r"^(?P<c>[a-z_]+)_s(?P<s>[1-9])$")
# the headline metrics (corruptions/evaluate.py headline_metrics) that a per_image.csv reproduces
METRICS = (
    "mce",
    "mce_partial",
    "relative_mce",
    "relative_mce_partial",
    "augmix_mean_err",
    "augmix_mean_err_partial",
    "mean_err",
)


# The report's corruption columns (table.py COLUMNS, lower is better): (title, headline metric, dataset prefix of
# the record), each with its own '<title> (partial)' column of the `<metric>_partial` key (fewer than the 15
# corruptions), never mixed with a full one. 'cifar10-' keeps CIFAR-100-C records out of the CIFAR-10-C column.
CORRUPTION_COLUMNS = tuple(
    (title + tag, metric + suffix, dataset)
    for title, metric, dataset in (
        ("ImageNet-C mCE", "mce", "imagenet"),
        ("CIFAR-100-C err", "augmix_mean_err", "cifar100"),
        ("CIFAR-10-C err", "augmix_mean_err", "cifar10-"),
    )
    for tag, suffix in (("", ""), (" (partial)", "_partial"))
)


@dataclass(frozen=True)
class Reference:
    """A published value for a report column, with where it was read (shown only with --paper)."""

    label: str
    method: str
    arch: str
    values: dict[str, float]
    source: str


# Only values read in their source. hendrycks/robustness README.md (commit 8190fe329f5f, "ImageNet-C Leaderboard":
# ResNet-50 trained on ImageNet-1K, 224 px, the released JPEGs): "ResNet-50 Baseline ... 76.7%" mCE (clean error
# 23.85%). No source read here gives a CutMix ImageNet-C mCE or CIFAR-C error (the CutMix paper reports none; the
# robustness and augmix READMEs list no CutMix row), so there is no CutMix reference.
REFERENCES: tuple[Reference, ...] = (
    Reference(
        label="hendrycks/robustness README: ResNet-50 baseline",
        method="baseline",
        arch="resnet50",
        values={"ImageNet-C mCE": 76.7},
        source="hendrycks/robustness README.md, ImageNet-C leaderboard, 'ResNet-50 Baseline' (commit 8190fe329f5f)",
    ),
)


REF_ROW = {"sha256": None, "checkpoint": None, "reference": True}


def corruption_reference_rows(records: list[tuple[Path, dict[str, Any]]], paper: bool) -> list[dict[str, Any]]:
    """The references as the report's Row fields (label, method, arch, values, no checkpoint): with `paper`
    (--paper) and a corruption record among `records` (a reference row shows only in a column some record measured)."""
    if not paper or not any(rec.get("kind") == "corruption" for _, rec in records):
        return []
    return [
        {"label": f"reference: {r.label}", "method": r.method, "arch": r.arch, "values": dict(r.values), **REF_ROW}
        for r in REFERENCES
    ]


def _outcomes(rows: list[dict[str, str]]) -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray] | None:
    """The per-image table: sets [(corruption, severity)], wrong (n, K) 0/1, evaluated (n, K) bool; the clean set,
    when there, as ('clean', 0) last. None when the rows are not corruption_eval's."""
    names = [k for k in rows[0] if _SET_COLUMN.match(k) and _SET_COLUMN.match(k)["c"] in ALL_CORRUPTIONS]
    if not names:
        return None
    sets = [(_SET_COLUMN.match(k)["c"], int(_SET_COLUMN.match(k)["s"])) for k in names]
    cols = names + (["clean_correct"] if "clean_correct" in rows[0] else [])
    sets += [("clean", 0)] if "clean_correct" in rows[0] else []
    try:
        cells = [[r[k] for k in cols] for r in rows]
        evaluated = np.array([[v != "" for v in row] for row in cells], dtype=bool)
        wrong = np.array([[1.0 - float(v) if v != "" else 0.0 for v in row] for row in cells])
    except (KeyError, ValueError):
        return None
    return sets, wrong, evaluated


def _weights(sets: list[tuple[str, int]], evaluated: np.ndarray, metric: str) -> np.ndarray | None:
    """Per set k the weight a_k such that, with every version evaluated, the metric is sum_k a_k E_k (E_k the
    set's error in percent, the clean set's included, negative in the relative mCE); None when the metric has nothing
    to cover. The corruptions covered follow corruptions/metrics.summarize_errors: a set counts when one of its
    images was evaluated; CE needs the 5 severities of one of the 15."""
    present = evaluated.any(axis=0)
    by_c: dict[str, list[int]] = {}
    for k, (c, _) in enumerate(sets):
        if c != "clean" and present[k]:
            by_c.setdefault(c, []).append(k)
    a = np.zeros(len(sets))
    base = metric.removesuffix("_partial")
    if base in ("mce", "relative_mce"):
        covered = [c for c in CORRUPTIONS if sorted(sets[k][1] for k in by_c.get(c, [])) == list(SEVERITIES)]
        clean = [k for k, (c, _) in enumerate(sets) if c == "clean" and present[k]]
        if not covered or (base == "relative_mce" and not clean):
            return None
        for c in covered:
            alex = ALEXNET_ERR[c] - (ALEXNET_CLEAN_ERR if base == "relative_mce" else 0.0)
            scale = 100.0 / (len(SEVERITIES) * 100.0 * alex) / len(covered)
            a[by_c[c]] += scale
            if base == "relative_mce":  # - sum_s E_clean over the 5 severities
                a[clean[0]] -= scale * len(SEVERITIES)
        return a
    if base in ("augmix_mean_err", "mean_err"):
        covered = [c for c in (CORRUPTIONS if base == "augmix_mean_err" else list(by_c)) if c in by_c]
        if not covered:
            return None
        for c in covered:
            a[by_c[c]] += 1.0 / len(by_c[c]) / len(covered)
        return a
    return None


def _ratio_statistic(sets: list[tuple[str, int]], wrong: np.ndarray, evaluated: np.ndarray, metric: str, a):
    """The metric from weighted sums when some versions were not evaluated: E_k = 100 sum w wrong / sum w evaluated
    per set; the AugMix mean pools a corruption's severities (errors over all its evaluated images)."""
    k = len(sets)
    stats = np.concatenate([wrong * evaluated, evaluated.astype(np.float64)], axis=1)
    pooled = metric.removesuffix("_partial") == "augmix_mean_err"
    groups: dict[str, list[int]] = {}
    for j, (c, _) in enumerate(sets):
        if a[j] != 0.0:
            groups.setdefault(c, []).append(j)

    def from_sums(sums: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            if pooled:  # per corruption: 100 x (wrong over all its sets) / (evaluated over all its sets)
                per_c = [100.0 * sums[:, g].sum(1) / sums[:, [k + j for j in g]].sum(1) for g in groups.values()]
                return np.mean(per_c, axis=0)
            err = 100.0 * sums[:, :k] / sums[:, k:]
            return np.nan_to_num(err, nan=0.0) @ a  # a set never evaluated has weight 0

    return SumsStatistic(stats, from_sums)


def corruption_per_image(folder: Path, rec: dict[str, Any], metric: str) -> PerImage | None:
    """A corruption record's headline metric as a statistic over its clean images (per_image.csv), image ids
    sorted; None for another metric or without the file."""
    path = folder / PER_IMAGE_CSV
    if metric not in METRICS or not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    got = _outcomes(rows) if rows else None
    if got is None:
        return None
    sets, wrong, evaluated = got
    a = _weights(sets, evaluated, metric)
    if a is None:
        return None
    ids = [r["image_id"] for r in rows]
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    ids = [ids[i] for i in order]
    wrong, evaluated = wrong[order], evaluated[order]
    used = a != 0.0
    if evaluated[:, used].all():  # linear: the mean of a per-image score (the sign-flip test applies)
        return ids, mean_statistic(100.0 * wrong @ a)
    return ids, _ratio_statistic(sets, wrong, evaluated, metric, a)


# ------------------------------------------------------------------------------------------------ notes
def corruption_notes(records: list[tuple[Path, dict[str, Any]]], paper: bool = False) -> list[str]:
    """What each partial mCE / mean error shown covers (per record), the figures' split into data / protocol cells,
    and with `paper` the references' sources."""
    notes = []
    covers: dict[str, list[str]] = {}
    for p, rec in newest_per_cell(records, "corruption"):
        summary = rec.get("summary") or {}
        # the metric the dataset's column shows: ImageNet-C's mCE, CIFAR-C's mean error
        shown = ("mce",) if str(rec.get("dataset", "")).lower().startswith("imagenet") else ("augmix_mean_err",)
        for key in shown:
            block = summary.get(key)
            if isinstance(block, dict) and block.get("partial"):
                who = rec["checkpoint"].get("method") or Path(str(rec["checkpoint"].get("path"))).stem
                covers.setdefault(f"{rec.get('dataset')}: {block.get('label')}", []).append(f"{who} ({p})")
    for label, who in covers.items():
        notes.append(
            f"Partial corruption metric, its own '(partial)' column, not comparable with a full one: {label}; "
            f"records: {', '.join(who)}."
        )
    groups = corruption_groups(records)
    for dataset in sorted({d for d, _, _, _ in groups}):
        mine = [(n, k, recs) for d, n, k, recs in groups if d == dataset]
        if len(mine) > 1:
            protos = [k[1] for _, k, _ in mine]
            parts = [
                f"corruption_{n}.png = {data_label(k[0], (recs[0].get('data') or {}).get('num_images', '?'))}; "
                f"protocol {protocol_label(k[1], protos)}"
                for n, k, recs in mine
            ]
            notes.append(f"Corruption figures of {dataset} on different data or protocols: " + " | ".join(parts))
    if paper and any(rec.get("kind") == "corruption" for _, rec in records):
        notes.append(
            "Corruption reference rows: "
            + "; ".join(f"'reference: {r.label}' = {r.source}" for r in REFERENCES)
            + ". No CutMix ImageNet-C / CIFAR-C value was found in a source read (docs/corruption_protocol.md)."
        )
    return notes


# ------------------------------------------------------------------------------------------------ figures
def corruption_groups(records: list[tuple[Path, dict[str, Any]]]) -> list[tuple[str, str, CellKey, list[dict]]]:
    """One figure per (dataset, data identity, protocol identity): (dataset, name, cell key, the newest record of
    each checkpoint in that cell). The name is the dataset without '-c', '<name>_<k>' when it splits."""
    groups: dict[tuple[str, CellKey], list[dict[str, Any]]] = {}
    for _, rec in newest_per_cell(records, "corruption"):
        if rec.get("errors"):
            groups.setdefault((str(rec.get("dataset")), cell_key(rec)), []).append(rec)
    out = []
    for dataset in sorted({d for d, _ in groups}):
        keys = [k for d, k in groups if d == dataset]
        stem = dataset.removesuffix("-c")
        for i, key in enumerate(keys, 1):
            out.append((dataset, stem if len(keys) == 1 else f"{stem}_{i}", key, groups[(dataset, key)]))
    return out


def _series(recs: list[dict[str, Any]]) -> list[tuple[str, str | None, dict[str, Any]]]:
    order = {m: i for i, m in enumerate(("baseline", "mixup", "cutout", "cutmix"))}
    labels = [r["checkpoint"].get("method") or Path(str(r["checkpoint"].get("path"))).stem for r in recs]
    items = [
        (
            f"{lab} ({str(r['checkpoint']['sha256'])[:8]})" if labels.count(lab) > 1 else lab,
            r["checkpoint"].get("method"),
            r,
        )
        for lab, r in zip(labels, recs)
    ]
    return sorted(items, key=lambda it: (order.get(it[1] or "", len(order)), it[0]))


def plot_corruptions(
    series: Sequence[tuple[str, str | None, dict[str, Any]]], title: str, path: str | os.PathLike
) -> None:
    """Small multiples of top-1 error against severity, one panel per corruption, and below them a bar per
    corruption: CE_c (ImageNet-C, the corruptions with a CE in every record) or the mean error over the severities,
    the checkpoints side by side; one colour per method when each checkpoint has a distinct known method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..robustness.figures import METHOD_COLOURS

    methods = [m for _, m, _ in series]
    by_method = all(m in METHOD_COLOURS for m in methods) and len(set(methods)) == len(methods)
    colours = [METHOD_COLOURS[m] if by_method else f"C{i}" for i, m in enumerate(methods)]
    names = [c for c in ALL_CORRUPTIONS if any(c in rec["errors"] for _, _, rec in series)]
    per = [(rec.get("summary") or {}).get("per_corruption") or {} for _, _, rec in series]
    ce_names = [c for c in names if all((p.get(c) or {}).get("ce") is not None for p in per)]
    bar_names, bar_key = (ce_names, "ce") if ce_names else (names, "mean_err")
    ncol = min(5, len(names))
    nrow = (len(names) + ncol - 1) // ncol
    fig = plt.figure(figsize=(2.5 * ncol + 0.5, 2.2 * nrow + 3.0))
    grid = fig.add_gridspec(nrow + 1, ncol, height_ratios=[1.0] * nrow + [1.3])
    for i, c in enumerate(names):
        ax = fig.add_subplot(grid[i // ncol, i % ncol])
        for (label, _, rec), colour in zip(series, colours):
            errs = rec["errors"].get(c) or {}
            sev = sorted(int(s) for s in errs)
            ax.plot(sev, [errs[str(s)] for s in sev], marker="o", ms=3, color=colour, label=label)
        ax.set_title(c.replace("_", " "), fontsize=8)
        ax.set_xticks(list(SEVERITIES))
        ax.tick_params(labelsize=7)
        if i % ncol == 0:
            ax.set_ylabel("top-1 err (%)", fontsize=7)
    ax = fig.add_subplot(grid[nrow, :])
    width = 0.8 / max(1, len(series))
    x = np.arange(len(bar_names))
    for j, ((label, _, _), p, colour) in enumerate(zip(series, per, colours)):
        vals = [float((p.get(c) or {}).get(bar_key) or np.nan) for c in bar_names]
        ax.bar(x + (j - (len(series) - 1) / 2) * width, vals, width, color=colour, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels([c.replace("_", " ") for c in bar_names], fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("CE_c (%)" if bar_key == "ce" else "mean err over severities (%)", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    if bar_key == "ce":
        ax.axhline(100.0, color="k", lw=0.6, ls=":", label="AlexNet (100)")
    ax.legend(fontsize=7, ncol=min(4, len(series)))
    what = "CE_c = sum_s E / sum_s E_AlexNet" if bar_key == "ce" else "mean error over severities"
    ax.set_title(f"per corruption: {what} (lower is better)", fontsize=8)
    partial = {
        f"{k.replace('augmix_mean_err', 'CIFAR-C err').replace('mce', 'mCE')} over {len(block.get('covers') or [])}"
        for _, _, rec in series
        for k, block in ((k, (rec.get("summary") or {}).get(k)) for k in ("mce", "augmix_mean_err"))
        if isinstance(block, dict) and block.get("partial")
    }  # the missing corruptions are named in the report's notes
    cover = f"\npartial: {', '.join(sorted(partial))} of the 15 corruptions" if partial else ""
    fig.suptitle(f"{title}: top-1 error against severity, per corruption{cover}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_corruption_figures(records: list[tuple[Path, dict[str, Any]]], out_dir: str | os.PathLike) -> dict[str, Path]:
    """corruption_<name>.png per figure cell (`corruption_groups`) in out_dir -> {'corruption_<name>': path}."""
    paths = {}
    for dataset, name, _, recs in corruption_groups(records):
        path = Path(out_dir) / f"corruption_{name}.png"
        plot_corruptions(_series(recs), dataset, path)
        paths[f"corruption_{name}"] = path
    return paths
