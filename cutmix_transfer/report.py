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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError
from .io import atomic_write_bytes, atomic_write_text
from .results import KINDS, RECORD_NAME
from .robustness.figures import plot_overlay

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Column:
    """One report column: which record (kind, dataset/detector) and which metric it shows."""

    title: str
    kind: str
    metric: str
    dataset: str | None = None      # match on record['dataset'] (lower-case prefix), None = any
    detector: str | None = None     # match on record['detector'] for detection records
    lower_is_better: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("top-1 err", "classification", "top1_err", lower_is_better=True),
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
)

# The CutMix paper (Yun et al., ICCV 2019), ResNet-50 pretrained on ImageNet: Tables 3 (ImageNet cls),
# 5 (WSOL, CAM), 6 (transfer to VOC detection and COCO captioning). MaxBoxAccV2 is not in the paper.
PAPER_ROWS: dict[str, dict[str, float]] = {
    "baseline": {"top-1 err": 23.68, "CUB loc acc": 49.41, "ImageNet loc acc": 46.30, "SSD VOC07 mAP": 76.7,
                 "Faster R-CNN VOC07 mAP": 75.6, "BLEU-1": 61.4, "BLEU-4": 22.9, "METEOR": 22.8, "CIDEr": 71.2},
    "mixup": {"top-1 err": 22.58, "CUB loc acc": 49.30, "ImageNet loc acc": 45.84, "SSD VOC07 mAP": 76.6,
              "Faster R-CNN VOC07 mAP": 73.9, "BLEU-1": 61.6, "BLEU-4": 23.2, "METEOR": 22.9, "CIDEr": 72.2},
    "cutout": {"top-1 err": 22.93, "CUB loc acc": 52.78, "ImageNet loc acc": 46.69, "SSD VOC07 mAP": 76.8,
               "Faster R-CNN VOC07 mAP": 75.0, "BLEU-1": 63.0, "BLEU-4": 24.0, "METEOR": 22.6, "CIDEr": 74.1},
    "cutmix": {"top-1 err": 21.40, "CUB loc acc": 54.81, "ImageNet loc acc": 47.25, "SSD VOC07 mAP": 77.6,
               "Faster R-CNN VOC07 mAP": 76.7, "BLEU-1": 64.2, "BLEU-4": 24.9, "METEOR": 23.1, "CIDEr": 77.6},
}
METHOD_ORDER = ("baseline", "mixup", "cutout", "cutmix")

# Table 11: top-1 accuracy (%) of the ResNet-50s above on ImageNet val under FGSM, eps 8/255
# (docs/robustness_protocol.md says where the eps comes from).
PAPER_TABLE11_FGSM = {"baseline": 8.2, "mixup": 24.4, "cutout": 11.5, "cutmix": 31.0}
for _method, _top1 in PAPER_TABLE11_FGSM.items():
    PAPER_ROWS[_method]["ImageNet FGSM top-1"] = _top1


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


def find_records(dirs: Iterable[str | os.PathLike]) -> list[tuple[Path, dict[str, Any]]]:
    """Every result record (`results.json` with a known `kind`) at or below the given folders or files."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise ConfigError(f"result folder {d} does not exist: pass folders that hold results.json files "
                              "(the --out / --work-dir of the evaluation tools)")
        paths = [d] if d.is_file() else sorted(d.rglob(RECORD_NAME))
        for p in paths:
            try:
                rec = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise ConfigError(f"{p} is not a readable JSON result record ({e}); delete it or re-run its tool")
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
    if col.detector and str(rec.get("detector", "")).lower() != col.detector:
        return False
    return True


def build_rows(records: list[tuple[Path, dict[str, Any]]]) -> list[Row]:
    """One row per checkpoint sha256; for each column the newest matching record wins."""
    groups: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for p, rec in records:
        groups.setdefault(rec["checkpoint"]["sha256"], []).append((p, rec))
    rows = []
    for sha, recs in groups.items():
        recs = sorted(recs, key=lambda pr: pr[1].get("created", ""))
        ck = [r["checkpoint"] for _, r in recs]
        method = next((c.get("method") for c in reversed(ck) if c.get("method")), None)
        arch = next((c.get("arch") for c in reversed(ck) if c.get("arch")), None)
        path = ck[-1].get("path")
        row = Row(label=method or Path(str(path)).stem, method=method, arch=arch, sha256=sha, checkpoint=path)
        for col in COLUMNS:
            for p, rec in reversed(recs):
                if _matches(col, rec):
                    row.values[col.title] = float(rec["metrics"][col.metric])
                    row.sources[col.title] = str(p)
                    break
        rows.append(row)
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    rows.sort(key=lambda r: (order.get(r.method or "", len(order)), r.checkpoint or ""))
    return rows


def paper_rows() -> list[Row]:
    return [Row(label=f"paper: {m}", method=m, arch="resnet50", sha256=None, checkpoint=None,
                values=dict(v), reference=True) for m, v in PAPER_ROWS.items()]


def _columns_in_use(rows: list[Row]) -> list[Column]:
    measured = [r for r in rows if not r.reference]
    return [c for c in COLUMNS if any(c.title in r.values for r in measured)]


def to_markdown(rows: list[Row]) -> str:
    cols = _columns_in_use(rows)
    head = ["pretraining", "arch", "checkpoint (sha256)"] + [c.title for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ck = "paper" if r.reference else f"{Path(str(r.checkpoint)).name} ({(r.sha256 or '')[:12]})"
        vals = [f"{r.values[c.title]:.2f}" if c.title in r.values else "–" for c in cols]
        lines.append("| " + " | ".join([r.label, r.arch or "?", ck] + vals) + " |")
    lower = [c.title for c in cols if c.lower_is_better]
    note = (f"\nAll numbers in percent; lower is better for {', '.join(lower)}, higher for the rest. "
            if lower else "\nAll numbers in percent, higher is better. ")
    note += "'–': no result record for that column. Paper rows: ResNet-50 on ImageNet (Yun et al., 2019).\n"
    return "\n".join(lines) + "\n" + note


def to_csv(rows: list[Row]) -> str:
    cols = _columns_in_use(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["label", "method", "arch", "checkpoint", "sha256", "reference"] + [c.title for c in cols])
    for r in rows:
        w.writerow([r.label, r.method or "", r.arch or "", r.checkpoint or "", r.sha256 or "", int(r.reference)]
                   + [f"{r.values[c.title]:.4f}" if c.title in r.values else "" for c in cols])
    return buf.getvalue()


def plot(rows: list[Row], path: str | os.PathLike) -> None:
    """Bars per downstream metric, one colour per pretraining method (mean over checkpoints, with min-max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    measured = [r for r in rows if not r.reference]
    cols = _columns_in_use(rows)
    if not cols:
        raise ConfigError("no metric to plot: the result folders hold no record with a report column")
    methods = [m for m in METHOD_ORDER if any(r.method == m for r in measured)]
    methods += sorted({r.label for r in measured if r.method not in METHOD_ORDER})
    colours = {"baseline": "#7f7f7f", "mixup": "#1f77b4", "cutout": "#ff7f0e", "cutmix": "#d62728"}
    ncol = min(4, len(cols))
    nrow = (len(cols) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.9 * nrow), squeeze=False)
    for ax, col in zip(axes.flat, cols):
        for i, m in enumerate(methods):
            vals = [r.values[col.title] for r in measured
                    if (r.method == m or (r.method not in METHOD_ORDER and r.label == m)) and col.title in r.values]
            if not vals:
                continue
            mean = float(np.mean(vals))
            err = [[mean - min(vals)], [max(vals) - mean]] if len(vals) > 1 else None
            ax.bar(i, mean, color=colours.get(m, f"C{i + 4}"), yerr=err, capsize=3, label=m)
            ax.text(i, mean, f"{mean:.1f}" + (f"\n(n={len(vals)})" if len(vals) > 1 else ""),
                    ha="center", va="bottom", fontsize=7)
        ax.set_title(col.title + (" (lower better)" if col.lower_is_better else ""), fontsize=9)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, fontsize=8, rotation=20)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(y=0.2)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    fig.suptitle("Downstream metrics by pretraining method (%)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def robustness_series(records: list[tuple[Path, dict[str, Any]]]) -> dict[str, list[tuple[str, str | None, dict]]]:
    """Per dataset, one (label, method, curves) per checkpoint: its newest robustness record with curves."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for _, rec in sorted(records, key=lambda pr: pr[1].get("created", "")):
        if rec.get("kind") == "robustness" and rec.get("curves"):
            newest[(str(rec.get("dataset")), rec["checkpoint"]["sha256"])] = rec
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    series: dict[str, list[tuple[str, str | None, dict]]] = {}
    for dataset in sorted({d for d, _ in newest}):
        recs = [(sha, rec) for (d, sha), rec in newest.items() if d == dataset]
        labels = [r["checkpoint"].get("method") or Path(str(r["checkpoint"].get("path"))).stem for _, r in recs]
        items = [(f"{label} ({sha[:8]})" if labels.count(label) > 1 else label, r["checkpoint"].get("method"),
                  r["curves"]) for label, (sha, r) in zip(labels, recs)]
        series[dataset] = sorted(items, key=lambda it: (order.get(it[1] or "", len(order)), it[0]))
    return series


def write_report(result_dirs: Iterable[str | os.PathLike], out_dir: str | os.PathLike,
                 paper: bool = False) -> dict[str, Path]:
    """Collect records, write report.md, report.csv and report.png in `out_dir`; return their paths."""
    records = find_records(result_dirs)
    if not records:
        raise ConfigError(f"no result records (results.json) found below {', '.join(map(str, result_dirs))}: "
                          "run an evaluation tool first (tools/wsol_eval.py, tools/test_det.py, ...)")
    rows = build_rows(records)
    all_rows = rows + (paper_rows() if paper else [])
    out = Path(out_dir)
    paths = {"markdown": out / "report.md", "csv": out / "report.csv", "figure": out / "report.png"}
    atomic_write_text(paths["markdown"], to_markdown(all_rows))
    atomic_write_text(paths["csv"], to_csv(all_rows))
    plot(rows, paths["figure"])
    for dataset, series in robustness_series(records).items():  # the paper's Figure 5 layout, checkpoints overlaid
        paths[f"robustness_{dataset}"] = out / f"robustness_{dataset}.png"
        plot_overlay(series, paths[f"robustness_{dataset}"])
    logger.info("report: %d records, %d checkpoints -> %s", len(records), len(rows), out)
    return paths
