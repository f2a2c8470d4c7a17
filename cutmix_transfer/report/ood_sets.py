"""The report's per-set OOD table: each OOD record's TNR at TPR 95%, AUROC and detection accuracy on every OOD set it
evaluated, optionally with the CutMix paper's Table A2 (Appendix E.2) beside them (report.md's "OOD detection per
set" section and report_ood_sets.csv).

One block of rows per (checkpoint, detector, data identity, protocol identity) (report.newest_per_cell): the same
cell identity as the main table, so two protocols are never one row; several records of one such cell show the
newest.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ..results import UNRECORDED, protocol_identity
from .paper import PAPER_TABLE_A2, PAPER_TABLE_A2_METRICS, PAPER_TABLE_A2_SETS

SET_METRICS = PAPER_TABLE_A2_METRICS  # tnr_at_tpr95, auroc, detection_acc: the paper's three
METRIC_TITLES = {"tnr_at_tpr95": "TNR@TPR95", "auroc": "AUROC", "detection_acc": "detection acc"}
METHOD_ORDER = ("baseline", "mixup", "cutout", "cutmix")
# the protocol fields shown in the table's protocol column (the others are in each record's `protocol` block)
SHOWN_FIELDS = ("metrics_as", "score_dtype", "skip_first", "cpu_pin")


def _protocol_text(rec: dict[str, Any]) -> str:
    if protocol_identity(rec) == UNRECORDED:
        return UNRECORDED
    block = rec["protocol"]
    return ", ".join(f"{k}={block[k]}" for k in SHOWN_FIELDS if k in block)


def ood_set_rows(records: list[tuple[Path, dict[str, Any]]], paper: bool = False) -> list[dict[str, Any]]:
    """One dict per (OOD record, OOD set): label, method, checkpoint, sha256, detector, protocol, set, the three
    metrics and, with `paper`, the paper's Table A2 values for the record's method and the set (msp only: the
    paper's detector), keys 'paper <metric>'. `records`: one per cell (report.newest_per_cell); rows by method,
    checkpoint, then the record's set order."""
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    out = []
    for p, rec in sorted(
        [(p, rec) for p, rec in records if rec.get("kind") == "ood" and isinstance(rec.get("per_set"), dict)],
        key=lambda pr: (rank.get(pr[1]["checkpoint"].get("method") or "", len(rank)), str(pr[0])),
    ):
        ck = rec["checkpoint"]
        method = ck.get("method")
        for name in rec.get("ood_sets") or list(rec["per_set"]):
            values = rec["per_set"].get(name) or {}
            row = {
                "label": method or Path(str(ck.get("path"))).stem,
                "method": method or "",
                "checkpoint": f"{Path(str(ck.get('path'))).name} ({str(ck.get('sha256'))[:12]})",
                "sha256": str(ck.get("sha256")),
                "detector": str(rec.get("detector")),
                "protocol": _protocol_text(rec),
                "set": name,
                "source": str(p),
            }
            row.update({m: values.get(m) for m in SET_METRICS})
            ref = PAPER_TABLE_A2.get(method or "", {}).get(name) if paper and row["detector"] == "msp" else None
            row.update({f"paper {m}": (ref[i] if ref else None) for i, m in enumerate(SET_METRICS)})
            out.append(row)
    return out


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{float(v):.2f}"


def ood_set_markdown(rows: list[dict[str, Any]], paper: bool = False) -> str:
    """The markdown section (empty when no OOD record)."""
    if not rows:
        return ""
    head = ["pretraining", "checkpoint (sha256)", "detector", "protocol", "OOD set"]
    head += [METRIC_TITLES[m] for m in SET_METRICS]
    if paper:
        head += [f"paper {METRIC_TITLES[m]}" for m in SET_METRICS]
    lines = ["## OOD detection per set", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["label"], r["checkpoint"], r["detector"], r["protocol"], r["set"]]
        cells += [_fmt(r[m]) for m in SET_METRICS]
        if paper:
            cells += [_fmt(r[f"paper {m}"]) for m in SET_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "In-distribution images positive; percent, higher is better. The main table's OOD columns are the "
        "unweighted means of these rows (msp records)."
        + (
            " Paper columns: the CutMix paper's Table A2 (Appendix E.2; PyramidNet-200 on CIFAR-100, max-softmax), "
            "for the row's pretraining method and the set ("
            + ", ".join(f"{k} = {v}" for k, v in PAPER_TABLE_A2_SETS.items())
            + "); '–' where the paper has no such row."
            if paper
            else ""
        )
    )
    return "\n".join(lines) + "\n"


def ood_set_csv(rows: list[dict[str, Any]], paper: bool = False) -> str:
    """report_ood_sets.csv: the same rows, full precision, with the source record's path."""
    cols = ["label", "method", "checkpoint", "sha256", "detector", "protocol", "set", *SET_METRICS]
    cols += [f"paper {m}" for m in SET_METRICS] if paper else []
    cols.append("source")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else (f"{r[c]:.4f}" if isinstance(r[c], float) else r[c]) for c in cols])
    return buf.getvalue()
