"""The files a corruption evaluation writes next to its results.json: per_image.csv (one row per clean image, for
the report's resampling by clean image) and predictions.npz (every prediction and confidence)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.corruptions import CorruptedData
from ..io import atomic_savez, atomic_write_text
from ..results import PER_IMAGE_CSV, write_record
from .data import CLEAN, EvalItems

PREDICTIONS = "predictions.npz"


def column(set_name: str) -> str:
    """per_image.csv's column of one corruption x severity set: 'gaussian_noise/3' -> 'gaussian_noise_s3'."""
    c, s = set_name.rsplit("/", 1)
    return f"{c}_s{s}"


def per_image_rows(
    data: CorruptedData,
    items: EvalItems,
    selected: np.ndarray,
    pred: np.ndarray,
    wrong: np.ndarray,
    evaluated: np.ndarray,
    first: int,
) -> list[dict[str, Any]]:
    """One row per selected clean image: index (position in the selection), image_id (the clean image's key), label,
    class_name, clean_pred / clean_correct (with a clean set), `<corruption>_s<severity>` (1 correct, 0 wrong, None not
    evaluated) and mean_err: 100 x the image's wrong share over the corruption x severity versions evaluated (the
    mean of mean_err over images is the unnormalised mean error when every version of every image was evaluated)."""
    names = [s.name for s in data.sets]
    rows = []
    for j, pos in enumerate(selected):
        label = int(data.labels[pos])
        row: dict[str, Any] = {
            "index": j,
            "image_id": data.keys[int(pos)],
            "label": label,
            "class_name": data.classes[label],
        }
        if first:
            row["clean_pred"] = int(pred[0, j]) if evaluated[0, j] else None
            row["clean_correct"] = int(not wrong[0, j]) if evaluated[0, j] else None
        ev = evaluated[first:, j]
        for k, name in enumerate(names):
            row[column(name)] = int(not wrong[first + k, j]) if ev[k] else None
        row["mean_err"] = 100.0 * float(wrong[first:, j][ev].mean()) if ev.any() else None
        rows.append(row)
    return rows


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text, the columns in the first row's order; None as an empty cell."""
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def write_outputs(
    out_dir: Path,
    record: dict[str, Any],
    data: CorruptedData,
    items: EvalItems,
    selected: np.ndarray,
    pred: np.ndarray,
    conf: np.ndarray,
    wrong: np.ndarray,
    evaluated: np.ndarray,
    first: int,
) -> tuple[dict[str, Path], list[dict[str, Any]]]:
    """Write results.json, per_image.csv and predictions.npz under out_dir -> (files, per-image rows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"results": write_record(out_dir, record)}
    rows = per_image_rows(data, items, selected, pred, wrong, evaluated, first)
    files["per_image"] = out_dir / PER_IMAGE_CSV
    atomic_write_text(files["per_image"], rows_csv(rows))
    files["predictions"] = out_dir / PREDICTIONS
    set_names = ([CLEAN] if first else []) + [s.name for s in data.sets]
    atomic_savez(
        files["predictions"],
        image_ids=np.asarray([data.keys[int(p)] for p in selected]),
        labels=data.labels[selected],
        sets=np.asarray(set_names),
        pred=pred,
        confidence=conf,
    )
    return files, rows
