"""The robustness overlay figures of the report (tools/report.py): which records go in which figure, each
checkpoint's curves with lambda as the share of the first image, and the notes that say which figure holds which
data and protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .cells import METHOD_ORDER, CellKey, cell_key, data_label, newest_per_cell, protocol_label


def _lambda_of_first(rec: dict[str, Any]) -> dict[str, Any]:
    """The record's curves with lambda as the share of the first image: version-1 records hold the share of the
    second (results.RECORD_VERSION), so their in-between ratios become 1 - ratio (same points, same values)."""
    curves = rec["curves"]
    if int(rec.get("record_version", 1) or 1) >= 2 or "inbetween" not in curves:
        return curves
    inb = {
        k: ({**v, "ratios": [1.0 - float(r) for r in v["ratios"]]} if isinstance(v, dict) and "ratios" in v else v)
        for k, v in curves["inbetween"].items()
    }
    return {**curves, "inbetween": inb}


def robustness_groups(records: list[tuple[Path, dict[str, Any]]]) -> list[tuple[str, CellKey, list[dict[str, Any]]]]:
    """The overlay figures: (name, cell key, records), one figure per (dataset, data identity, protocol identity),
    each checkpoint's newest record of that cell with curves. The name is the dataset, or '<dataset>_<k>' when the
    dataset's records split into several cells (the report's notes say which is which)."""
    groups: dict[tuple[str, CellKey], list[dict[str, Any]]] = {}
    for _, rec in newest_per_cell(records, "robustness"):
        if rec.get("curves"):
            groups.setdefault((str(rec.get("dataset")), cell_key(rec)), []).append(rec)
    out = []
    for dataset in sorted({d for d, _ in groups}):
        keys = [k for d, k in groups if d == dataset]
        for i, key in enumerate(keys, 1):
            out.append((dataset if len(keys) == 1 else f"{dataset}_{i}", key, groups[(dataset, key)]))
    return out


def robustness_series(records: list[tuple[Path, dict[str, Any]]]) -> dict[str, list[tuple[str, str | None, dict]]]:
    """Per overlay figure (`robustness_groups`), one (label, method, curves) per checkpoint, lambda the share of the
    first image throughout (`_lambda_of_first`); two checkpoints of one label get their sha256 prefix."""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    series: dict[str, list[tuple[str, str | None, dict]]] = {}
    for name, _, recs in robustness_groups(records):
        labels = [r["checkpoint"].get("method") or Path(str(r["checkpoint"].get("path"))).stem for r in recs]
        items = [
            (
                f"{label} ({str(r['checkpoint']['sha256'])[:8]})" if labels.count(label) > 1 else label,
                r["checkpoint"].get("method"),
                _lambda_of_first(r),
            )
            for label, r in zip(labels, recs)
        ]
        series[name] = sorted(items, key=lambda it: (order.get(it[1] or "", len(order)), it[0]))
    return series


def robustness_notes(records: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    """A note per dataset whose robustness records split into several overlay figures: which figure holds which
    data and protocol."""
    groups = robustness_groups(records)
    notes = []
    for dataset in sorted({str(recs[0].get("dataset")) for _, _, recs in groups}):
        mine = [(n, k, recs) for n, k, recs in groups if str(recs[0].get("dataset")) == dataset]
        if len(mine) > 1:
            protos = [k[1] for _, k, _ in mine]
            parts = [
                f"robustness_{n}.png = {data_label(k[0], (recs[0].get('data') or {}).get('num_images', '?'))}; "
                f"protocol {protocol_label(k[1], protos)}"
                for n, k, recs in mine
            ]
            notes.append(
                f"Robustness curves on {dataset} measured on different data or protocols: " + " | ".join(parts)
            )
    return notes
