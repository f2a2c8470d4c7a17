"""The report that links each checkpoint's pretraining to its downstream numbers.

Reads the result records (`results.json`, see results.py) below the given folders, groups them by the
checkpoint's sha256, and writes one row per checkpoint shaped like the CutMix paper's transfer table
(markdown + CSV), optionally with the paper's own rows, and a bar figure per downstream metric.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..io import atomic_write_bytes, atomic_write_text
from ..results import KINDS, RECORD_NAME, TRAIN_SEED, UNRECORDED, protocol_identity
from ..robustness.figures import METHOD_COLOURS, plot_overlay
from .bootstrap import DEFAULT_RESAMPLES, Interval
from .calibration import RELIABILITY_FIGURE, plot_reliability, reliability_series
from .cells import (
    METHOD_ORDER,
    CellKey,
    cell_key,
    created,
    data_label,
    newest_per_cell,
    protocol_label,
    replicate_runs,
    row_sha256,
)
from .compare import CELL_SINGLE_RUN
from .compare import add_intervals as compare_intervals
from .corruption import CORRUPTION_COLUMNS, corruption_notes, corruption_reference_rows, write_corruption_figures
from .ood_sets import ood_set_csv, ood_set_markdown, ood_set_rows
from .overlays import robustness_notes, robustness_series
from .paper import PAPER_PYRAMIDNET_ARCH, PAPER_ROWS, PAPER_TABLE12_OOD
from .replicates import SINGLE_RUN_NOTE, ReplicateInterval

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    """One report column: which record (kind, dataset/detector) and which metric it shows."""

    title: str
    kind: str
    metric: str
    dataset: str | None = None  # match on record['dataset'] (lower-case prefix), None = any
    not_dataset: str | None = None  # ... except records whose dataset starts so (a family with its own column)
    detector: str | None = None  # match on record['detector'] (detection: the model; ood: the detector)
    lower_is_better: bool = False


COLUMNS: tuple[Column, ...] = (
    # ImageNet-sized classification (the demo's CUB layout, ImageNet, CUB; the paper's Table 3); CIFAR-100 has its
    # own column (the paper's Table 5, beside the OOD columns of Table 12)
    # CIFAR-10 its own (dataset 'cifar10', not 'cifar100': the match is a prefix). train_cls and test_cls records.
    Column("top-1 err", "classification", "top1_err", not_dataset="cifar", lower_is_better=True),
    Column("CIFAR-100 top-1 err", "classification", "top1_err", dataset="cifar100", lower_is_better=True),
    Column("CIFAR-10 top-1 err", "classification", "top1_err", "cifar10", "cifar100", lower_is_better=True),
    # calibration (tools/test_cls.py records): ECE, 15 bins, L1, percent (report/calibration.py)
    Column("ECE", "classification", "ece", not_dataset="cifar", lower_is_better=True),
    Column("CIFAR-100 ECE", "classification", "ece", dataset="cifar100", lower_is_better=True),
    Column("CIFAR-10 ECE", "classification", "ece", dataset="cifar10", not_dataset="cifar100", lower_is_better=True),
    Column("CUB loc acc", "wsol", "top1_loc", dataset="cub"),
    Column("CUB MaxBoxAccV2", "wsol", "maxboxacc_v2", dataset="cub"),
    Column("ImageNet loc acc", "wsol", "top1_loc", dataset="imagenet"),
    Column("ImageNet MaxBoxAccV2", "wsol", "maxboxacc_v2", dataset="imagenet"),
    Column("SSD VOC07 mAP", "detection", "mAP", detector="ssd300"),
    Column("Faster R-CNN VOC07 mAP", "detection", "mAP", detector="faster_rcnn"),
    Column("BLEU-1", "captioning", "BLEU-1"),
    Column("BLEU-4", "captioning", "BLEU-4"),
    Column("METEOR", "captioning", "METEOR"),
    Column("CIDEr", "captioning", "CIDEr"),
    Column("ImageNet FGSM top-1", "robustness", "fgsm_top1_eps8", dataset="imagenet"),
    # OOD detection (tools/ood_eval.py records): the mean over the evaluated OOD sets of the max-softmax detector (the
    # paper's; odin / energy records are other measurements, not reruns of this cell), in-distribution as positives
    # (docs/ood_protocol.md).
    Column("OOD TNR@TPR95 (mean)", "ood", "tnr_at_tpr95", detector="msp"),
    Column("OOD AUROC (mean)", "ood", "auroc", detector="msp"),
    Column("OOD detection acc (mean)", "ood", "detection_acc", detector="msp"),
    *(Column(t, "corruption", m, dataset=d, lower_is_better=True) for t, m, d in CORRUPTION_COLUMNS),  # -C sets
)


@dataclass
class Row:
    """One checkpoint (or a paper reference row) and its numbers by column title."""

    label: str
    method: str | None
    arch: str | None
    sha256: str | None
    checkpoint: str | None
    values: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # column title -> results.json path
    reference: bool = False
    # column title -> 95% interval: over images (one run) or over images and runs (several)
    intervals: dict[str, Interval | ReplicateInterval] = field(default_factory=dict)
    # column title -> the cell's runs (replicates: one record per training seed, seed order): paths, values, seeds
    runs: dict[str, list[str]] = field(default_factory=dict)
    run_values: dict[str, list[float]] = field(default_factory=dict)
    run_seeds: dict[str, list[Any]] = field(default_factory=dict)

    def run_sd(self, title: str) -> float | None:
        """The SD across the cell's runs (ddof 1), None with one run."""
        v = self.run_values.get(title) or []
        return float(np.std(v, ddof=1)) if len(v) > 1 else None


def find_records(dirs: Iterable[str | os.PathLike]) -> list[tuple[Path, dict[str, Any]]]:
    """Every result record (`results.json` with a known `kind`) at or below the given folders or files."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise ConfigError(
                f"result folder {d} does not exist: pass folders that hold results.json files "
                "(the --out / --work-dir of the evaluation tools)"
            )
        paths = [d] if d.is_file() else sorted(d.rglob(RECORD_NAME))
        for p in paths:
            try:
                rec = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise ConfigError(
                    f"{p} is not a readable JSON result record ({e}); delete it or re-run its tool"
                ) from e
            if not isinstance(rec, dict) or rec.get("kind") not in KINDS:
                logger.info("skipping %s: not a result record", p)
                continue
            if not (rec.get("checkpoint") or {}).get("sha256"):
                logger.warning("skipping %s: the record names no checkpoint sha256", p)
                continue
            found.append((p, rec))
    return found


def _matches(col: Column, rec: dict[str, Any]) -> bool:
    if rec.get("kind") != col.kind or col.metric not in (rec.get("metrics") or {}):
        return False
    if col.dataset and not str(rec.get("dataset", "")).lower().startswith(col.dataset):
        return False
    if col.not_dataset and str(rec.get("dataset", "")).lower().startswith(col.not_dataset):
        return False
    if col.detector and str(rec.get("detector", "")).lower() != col.detector:
        return False
    return True


def build_rows(
    records: list[tuple[Path, dict[str, Any]]], notes: list[str] | None = None, strict: bool = False
) -> list[Row]:
    """One row per checkpoint sha256; a cell is (checkpoint, column, data identity, protocol identity), so one
    checkpoint evaluated on different data or under different protocols gives different columns ('<title> [data
    k]', '<title> [protocol p]', legend in `notes`), never one overwriting the other. Records of one cell that
    differ only in the training seed are its runs (replicates, cells.replicate_runs): the cell holds their mean,
    `Row.runs` / `run_values` / `run_seeds` each run. Several records of one seed, or without a seed (a rerun):
    the newest is shown and `notes` names every file; `strict` makes that a ConfigError."""
    notes = notes if notes is not None else []
    ordered = sorted(records, key=created)
    data_ids: dict[tuple[str, str, str, str], int] = {}
    protocol_ids: dict[str, int] = {}
    sizes: dict[tuple[str, str, str, str], Any] = {}
    for _, rec in ordered:
        key, proto = cell_key(rec)
        data_ids.setdefault(key, len(data_ids) + 1)
        protocol_ids.setdefault(proto, len(protocol_ids) + 1)
        sizes[key] = (rec.get("data") or {}).get("num_images", rec.get("num_images", "?"))

    def order(k: CellKey) -> tuple[int, int]:
        return data_ids[k[0]], protocol_ids[k[1]]

    col_keys = {
        col.title: sorted({cell_key(rec) for _, rec in records if _matches(col, rec)}, key=order) for col in COLUMNS
    }

    def title(col: Column, key: CellKey) -> str:
        keys = col_keys[col.title]
        tags = []
        if len({k[0] for k in keys}) > 1:
            tags.append(f"data {data_ids[key[0]]}")
        if len({k[1] for k in keys}) > 1:
            tags.append(f"protocol {protocol_ids[key[1]]}")
        return f"{col.title} [{', '.join(tags)}]" if tags else col.title

    groups: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for p, rec in ordered:
        groups.setdefault(row_sha256(rec), []).append((p, rec))
    rows = []
    reruns: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    replicates: dict[tuple[str, str], list[str]] = {}
    for sha, recs in groups.items():
        ck = [r["checkpoint"] for _, r in recs]
        method = next((c.get("method") for c in reversed(ck) if c.get("method")), None)
        arch = next((c.get("arch") for c in reversed(ck) if c.get("arch")), None)
        path = ck[-1].get("path")
        row = Row(label=method or Path(str(path)).stem, method=method, arch=arch, sha256=sha, checkpoint=path)
        for col in COLUMNS:
            for key in col_keys[col.title]:
                cands = [(p, rec) for p, rec in reversed(recs) if _matches(col, rec) and cell_key(rec) == key]
                if not cands:
                    continue
                t = title(col, key)
                runs, cell_reruns = replicate_runs(cands)
                row.runs[t] = [str(p) for p, _ in runs]
                row.run_values[t] = [float(r["metrics"][col.metric]) for _, r in runs]
                row.run_seeds[t] = [r.get(TRAIN_SEED) for _, r in runs]
                row.values[t] = float(np.mean(row.run_values[t]))  # one run: its value; replicates: the run mean
                row.sources[t] = str(max(runs, key=created)[0])
                if len(runs) > 1:
                    seeds = ", ".join(map(str, row.run_seeds[t]))
                    replicates.setdefault((f"{row.label} (sha256 {sha[:12]})", seeds), []).append(t)
                for what, prs in cell_reruns:
                    files = tuple(f"{p} ({r.get('created', '?')})" for p, r in prs)
                    reruns.setdefault((f"{row.label} (sha256 {sha[:12]})", what, files), []).append(t)
        rows.append(row)
    for (who, what, files), titles in reruns.items():
        notes.append(
            f"Rerun: {len(files)} records of the same cell ({what}), {who}, {', '.join(titles)}: "
            + (
                f"the seeded runs are shown; not shown: {'; '.join(files[1:])}."
                if what.startswith("no train_seed, beside")
                else f"the newest is shown, {files[0]}; not shown: {'; '.join(files[1:])}."
            )
        )
    if strict and reruns:
        raise ConfigError(f"--strict: {notes[-len(reruns)]} Delete or move the older record(s), or drop --strict")
    for (who, seeds), titles in replicates.items():
        notes.append(
            f"Replicates: {who}, {', '.join(titles)}: {len(seeds.split(', '))} training runs (train_seed {seeds}), "
            "shown as mean ± SD across seeds (n runs)."
        )
    split = [t for t, keys in col_keys.items() if len({k[0] for k in keys}) > 1]
    if split:
        used = sorted({k[0] for t in split for k in col_keys[t]}, key=data_ids.get)
        notes.append(
            f"One checkpoint measured on different data is shown in separate columns ({', '.join(split)}): "
            + "; ".join(f"data {data_ids[k]} = {data_label(k, sizes[k])}" for k in used)
            + "."
        )
    split = [t for t, keys in col_keys.items() if len({k[1] for k in keys}) > 1]
    if split:
        used = sorted({k[1] for t in split for k in col_keys[t]}, key=protocol_ids.get)
        notes.append(
            f"Records under different protocols are shown in separate columns ({', '.join(split)}): "
            + "; ".join(f"protocol {protocol_ids[k]} = {protocol_label(k, used)}" for k in used)
            + "."
        )
    legacy = [str(p) for p, rec in records if not isinstance(rec.get("data"), dict)]
    if legacy:
        notes.append(
            f"{len(legacy)} record(s) predate the data identity (no `data` block, e.g. {legacy[0]}): each is "
            "treated as its own data ('unrecorded', told apart only by dataset, split and the `data_root` "
            "its tool wrote), never merged with a record that names its data."
        )
    unrecorded = [str(p) for p, rec in records if protocol_identity(rec) == UNRECORDED]
    if unrecorded:
        notes.append(
            f"{len(unrecorded)} record(s) predate the protocol block (record_version < 2, e.g. {unrecorded[0]}): "
            "their protocol reads as 'unrecorded', never merged with a record that names its protocol."
        )
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    rows.sort(key=lambda r: (rank.get(r.method or "", len(rank)), r.checkpoint or ""))
    return rows


def paper_rows() -> list[Row]:
    """The paper's ResNet-50 / ImageNet rows, then its PyramidNet-200 / CIFAR-100 rows (Table 12) as their own."""
    resnet = [
        Row(
            label=f"paper: {m}", method=m, arch="resnet50", sha256=None, checkpoint=None, values=dict(v), reference=True
        )
        for m, v in PAPER_ROWS.items()
    ]
    pyramid = [
        Row(
            label=f"paper (PyramidNet-200, CIFAR-100): {m}",
            method=m,
            arch=PAPER_PYRAMIDNET_ARCH,
            sha256=None,
            checkpoint=None,
            values=dict(v),
            reference=True,
        )
        for m, v in PAPER_TABLE12_OOD.items()
    ]
    return resnet + pyramid


_VARIANT = re.compile(r"^(?P<base>.*) \[(?P<tag>(?:data \d+|protocol \d+)(?:, protocol \d+)?)\]$")


def _variant_order(tag: str) -> tuple[int, ...]:
    """'data 2, protocol 1' -> (2, 1): variants sorted by data, then protocol."""
    return tuple(int(n) for n in re.findall(r"\d+", tag))


def _columns_in_use(rows: list[Row]) -> list[Column]:
    """The columns some measured row has, each split into its '[data k]' / '[protocol p]' variants where build_rows
    split it."""
    measured = [r for r in rows if not r.reference]
    titles = {t for r in measured for t in r.values}
    variants: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    for t in titles:
        m = _VARIANT.match(t)
        if m:
            variants.setdefault(m["base"], []).append((_variant_order(m["tag"]), t))
    out: list[Column] = []
    for c in COLUMNS:
        if c.title in titles:
            out.append(c)
        out += [replace(c, title=t) for _, t in sorted(variants.get(c.title, []))]
    return out


def _cell(r: Row, c: Column) -> float | None:
    """A row's value in a column; a paper row shows its number in every data variant of the column."""
    if c.title in r.values:
        return r.values[c.title]
    m = _VARIANT.match(c.title)
    return r.values.get(m["base"]) if (r.reference and m) else None


def _fmt_cell(r: Row, c: Column) -> str:
    """'40.00', '40.00 [30.00, 50.00] (1 run: test images only)', '26.23 [20.55, 30.24] (BC, bias +2.68; 1 run:
    test images only)' or, for replicates, '28.10 ± 2.30 (n=3) [22.00, 34.00]' (mean ± SD across seeds)."""
    v = _cell(r, c)
    if v is None:
        return "–"
    sd = r.run_sd(c.title)
    text = f"{v:.2f} ± {sd:.2f} (n={len(r.run_values[c.title])})" if sd is not None else f"{v:.2f}"
    ci = r.intervals.get(c.title)
    if ci is None:
        return text
    text += f" [{ci.low:.2f}, {ci.high:.2f}]"
    if isinstance(ci, ReplicateInterval):
        return text
    how = f"{ci.method}, bias {ci.bias:+.2f}; " if ci.method != "percentile" else ""
    return text + f" ({how}{CELL_SINGLE_RUN})"


def to_markdown(rows: list[Row], notes: Iterable[str] = ()) -> str:
    cols = _columns_in_use(rows)
    head = ["pretraining", "arch", "checkpoint (sha256)"] + [c.title for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ck = "paper" if r.reference else f"{Path(str(r.checkpoint)).name} ({(r.sha256 or '')[:12]})"
        vals = [_fmt_cell(r, c) for c in cols]
        lines.append("| " + " | ".join([r.label, r.arch or "?", ck] + vals) + " |")
    lower = [c.title for c in cols if c.lower_is_better]
    note = (
        f"\nAll numbers in percent; lower is better for {', '.join(lower)}, higher for the rest. "
        if lower
        else "\nAll numbers in percent, higher is better. "
    )
    note += (
        "'–': no result record for that column. Paper rows: ResNet-50 on ImageNet (Yun et al., 2019: Tables 3, 9, "
        "10, 11, A1); 'paper (PyramidNet-200, CIFAR-100)' rows: its Table 12 (max-softmax, mean of 7 OOD sets) "
        "and the CIFAR-100 top-1 errors of its Table 5.\n"
    )
    if any(r.intervals for r in rows):
        ci = next(iter(next(r for r in rows if r.intervals).intervals.values()))
        note += (
            f"[low, high]: 95% bootstrap interval ({ci.resamples} resamples of the evaluated images, the metric "
            "recomputed on each resample, except CIDEr, whose idf stays the full test set's; bias-corrected (BC) "
            "for mAP and MaxBoxAcc, bias printed; docs/report_statistics.md); a number without one has no "
            f"per-image results to resample. '{CELL_SINGLE_RUN}': {SINGLE_RUN_NOTE}. 'm ± s (n=R)': the mean "
            "over R training runs (records that differ only in train_seed) ± their SD across seeds; its interval "
            "covers the test images and the training runs (two-level bootstrap widened by a Student-t run "
            "component).\n"
        )
    note += "".join(f"\n- {n}" for n in notes)
    return "\n".join(lines) + "\n" + note + ("\n" if notes else "")


def to_csv(rows: list[Row]) -> str:
    cols = _columns_in_use(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    with_ci = [c for c in cols if any(c.title in r.intervals for r in rows)]
    with_runs = [c for c in cols if any(len(r.run_values.get(c.title, [])) > 1 for r in rows)]
    w.writerow(
        ["label", "method", "arch", "checkpoint", "sha256", "reference"]
        + [c.title for c in cols]
        + [f"{c.title} {end}" for c in with_ci for end in ("ci95_low", "ci95_high")]
        + [f"{c.title} {end}" for c in with_runs for end in ("runs", "run_sd")]
    )
    for r in rows:
        vals = [_cell(r, c) for c in cols]
        cis = [r.intervals.get(c.title) for c in with_ci]
        sds = [(len(r.run_values.get(c.title, [])), r.run_sd(c.title)) for c in with_runs]
        w.writerow(
            [r.label, r.method or "", r.arch or "", r.checkpoint or "", r.sha256 or "", int(r.reference)]
            + [f"{v:.4f}" if v is not None else "" for v in vals]
            + [x for ci in cis for x in ((f"{ci.low:.4f}", f"{ci.high:.4f}") if ci is not None else ("", ""))]
            + [x for k, sd in sds for x in ((str(k) if k else ""), (f"{sd:.4f}" if sd is not None else ""))]
        )
    return buf.getvalue()


def plot(rows: list[Row], path: str | os.PathLike) -> None:
    """Bars per downstream metric, one colour per pretraining method: one checkpoint with its 95% interval as the
    error bar, several checkpoints as their mean with the min-max spread; each training run of a replicate cell
    (several seeds) is a black dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in rows if not r.reference]
    cols = _columns_in_use(rows)
    if not cols:
        raise ConfigError("no metric to plot: the result folders hold no record with a report column")
    methods = [m for m in METHOD_ORDER if any(r.method == m for r in measured)]
    methods += sorted({r.label for r in measured if r.method not in METHOD_ORDER})
    ncol = min(4, len(cols))
    nrow = (len(cols) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.9 * nrow), squeeze=False)
    for ax, col in zip(axes.flat, cols):
        for i, m in enumerate(methods):
            group = [
                r
                for r in measured
                if (r.method == m or (r.method not in METHOD_ORDER and r.label == m)) and col.title in r.values
            ]
            if not group:
                continue
            vals = [r.values[col.title] for r in group]
            mean = float(np.mean(vals))
            err = [[mean - min(vals)], [max(vals) - mean]] if len(vals) > 1 else None
            cis = [r.intervals[col.title] for r in group if col.title in r.intervals]
            if len(vals) == 1 and cis:  # one checkpoint: its 95% bootstrap interval as the error bar
                err = [[max(0.0, mean - cis[0].low)], [max(0.0, cis[0].high - mean)]]
            ax.bar(i, mean, color=METHOD_COLOURS.get(m, f"C{i + 4}"), yerr=err, capsize=3, label=m)
            dots = [v for r in group if len(r.run_values.get(col.title, [])) > 1 for v in r.run_values[col.title]]
            if dots:  # every training run of a replicate cell as a dot
                ax.scatter(i + np.linspace(-0.15, 0.15, len(dots)), dots, s=9, color="black", zorder=3)
            top = mean + (err[1][0] if err else 0.0)  # the label sits above the error bar, not on it
            ax.text(
                i,
                top,
                f"{mean:.1f}" + (f"\n(n={len(vals)})" if len(vals) > 1 else ""),
                ha="center",
                va="bottom",
                fontsize=7,
            )
        ax.set_title(col.title + (" (lower better)" if col.lower_is_better else ""), fontsize=9)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, fontsize=8, rotation=20)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(y=0.2)
    for ax in list(axes.flat)[len(cols) :]:
        ax.axis("off")
    fig.suptitle("Downstream metrics by pretraining method (%)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def add_intervals(
    rows: list[Row],
    records: list[tuple[Path, dict[str, Any]]],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    notes: list[str] | None = None,
) -> list[str]:
    """Fill each measured row's 95% intervals and return the paired-difference lines, Holm-adjusted over the
    family (compare.add_intervals, compare.Comparison.line)."""
    measured = [r for r in rows if not r.reference]
    return [d.line() for d in compare_intervals(measured, _columns_in_use(rows), records, resamples, seed, notes)]


def write_report(
    result_dirs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    paper: bool = False,
    strict: bool = False,
    bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Path]:
    """Collect records, write report.md, report.csv and report.png in `out_dir`; return their paths.

    strict: two records of one cell (a rerun) is an error instead of a note; bootstrap: resamples per 95%
    interval and paired difference (0 = none), drawn from `seed`."""
    if bootstrap < 0:
        raise ConfigError(f"--bootstrap {bootstrap}: pass the number of resamples (1000 is usual) or 0 for none")
    records = find_records(result_dirs)
    if not records:
        raise ConfigError(
            f"no result records (results.json) found below {', '.join(map(str, result_dirs))}: "
            "run an evaluation tool first (tools/wsol_eval.py, tools/test_det.py, ...)"
        )
    notes: list[str] = []
    rows = build_rows(records, notes, strict=strict)
    notes += robustness_notes(records)
    notes += corruption_notes(records, paper)
    differences = add_intervals(rows, records, bootstrap, seed, notes) if bootstrap else []
    if differences:
        notes.append(
            f"Paired differences, later row − earlier row on the same images ({len(differences)} in the family; "
            f"95% bootstrap interval from {bootstrap} resamples; the two-sided p of the test named beside it, and "
            "Holm's adjusted p over the family; several runs: P(A better than B) across runs):\n"
            + "\n".join(f"  - {d}" for d in differences)
        )
    all_rows = rows + (paper_rows() if paper else [])
    all_rows += [Row(**r) for r in corruption_reference_rows(records, paper)]  # --paper: published corruption values
    out = Path(out_dir)
    paths = {"markdown": out / "report.md", "csv": out / "report.csv", "figure": out / "report.png"}
    per_set = ood_set_rows(newest_per_cell(records, "ood"), paper)
    per_set_md = ood_set_markdown(per_set, paper)
    atomic_write_text(paths["markdown"], to_markdown(all_rows, notes) + ("\n" + per_set_md if per_set_md else ""))
    atomic_write_text(paths["csv"], to_csv(all_rows))
    if per_set:
        paths["ood_sets_csv"] = out / "report_ood_sets.csv"
        atomic_write_text(paths["ood_sets_csv"], ood_set_csv(per_set, paper))
    plot(rows, paths["figure"])
    for name, series in robustness_series(records).items():  # the paper's Figure 5 layout, checkpoints overlaid
        paths[f"robustness_{name}"] = out / f"robustness_{name}.png"
        plot_overlay(series, paths[f"robustness_{name}"])
    paths.update(write_corruption_figures(records, out))  # corruption_<dataset>.png, one per data x protocol cell
    calibration = reliability_series(records)  # test_cls records with per-image confidences, all in one figure
    if calibration:
        paths["reliability"] = plot_reliability(calibration, out / RELIABILITY_FIGURE)
    logger.info("report: %d records, %d checkpoints -> %s", len(records), len(rows), out)
    return paths
