"""Calibration in the report: the ECE as a bootstrap statistic over images, and the reliability curves of every
checkpoint in one figure (report/reliability.png; docs/report_statistics.md, docs/classification_protocol.md).

- `ECEStatistic`: the expected calibration error (percent; 15 equal-width confidence bins, L1, the last bin holding
  confidences of exactly 1: clseval.calibration's definition) recomputed on each resample from the per-image
  (confidence, correct) rows that tools/test_cls.py writes. A bin's weight is its resampled image count, so the
  statistic on count weights equals the ECE of the explicitly repeated rows. It is not a per-image mean (a sum of
  absolute per-bin gaps), so its paired tests are the swap permutations (`pooled`), like mAP's.
- `reliability_series` / `plot_reliability`: per test set (data identity), each checkpoint's newest test_cls record
  with per-image confidences, drawn as accuracy against mean confidence per bin over the diagonal.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..clseval.calibration import ECE_BINS, bin_index, expected_calibration_error
from ..clseval.figures import display_bins
from ..errors import ConfigError
from ..io import atomic_write_bytes
from ..results import PER_IMAGE_CSV
from .cells import cell_key, data_label, newest_per_cell

RELIABILITY_FIGURE = "reliability.png"


class ECEStatistic:
    """ECE (percent) of per-image (confidence, correct) re-weighted by counts w (B, n): per bin b the signed gap
    G_b = sum_i w_i [bin(i) = b] (correct_i - confidence_i), ECE = scale * sum_b |G_b| / sum_i w_i (that is
    sum_b (n_b / N) |acc_b - conf_b| with the resample's counts; an empty bin adds 0)."""

    def __init__(
        self, confidence: Sequence[float] | np.ndarray, correct: Sequence[float] | np.ndarray, n_bins: int = ECE_BINS
    ) -> None:
        self.confidence = np.asarray(confidence, dtype=np.float64).ravel()
        self.correct = np.asarray(correct, dtype=np.float64).ravel()
        if self.confidence.shape != self.correct.shape:
            raise ValueError(f"{self.confidence.size} confidences for {self.correct.size} correct flags")
        self.n_bins = int(n_bins)
        bins = bin_index(self.confidence, self.n_bins)
        # (n, n_bins + 1): each image's signed gap in its bin's column, so w @ gaps sums the gaps per bin
        self._gaps = np.zeros((self.confidence.size, self.n_bins + 1))
        self._gaps[np.arange(self.confidence.size), bins] = self.correct - self.confidence

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.atleast_2d(np.asarray(w, dtype=np.float64))
        if w.shape[1] != self.confidence.size:
            raise ValueError(f"counts have {w.shape[1]} columns for {self.confidence.size} images")
        return 100.0 * np.abs(w @ self._gaps).sum(axis=1) / w.sum(axis=1)

    def pooled(self, other: ECEStatistic) -> ECEStatistic:
        """The statistic over both checkpoints' 2n outputs (this one's first), for the swap-permutation test."""
        return ECEStatistic(
            np.concatenate([self.confidence, other.confidence]),
            np.concatenate([self.correct, other.correct]),
            self.n_bins,
        )


def read_confidences(folder: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """(image ids, confidence, correct_top1) from a test_cls per_image.csv in `folder`; None when there is none or
    it has no confidence column (train_cls's file)."""
    path = Path(folder) / PER_IMAGE_CSV
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "confidence" not in rows[0] or "correct_top1" not in rows[0]:
        return None
    try:
        conf = np.array([float(r["confidence"]) for r in rows])
        correct = np.array([float(r["correct_top1"]) for r in rows])
    except (KeyError, ValueError):
        return None
    return [r["image_id"] for r in rows], conf, correct


def ece_per_image(folder: str | os.PathLike) -> tuple[list[str], ECEStatistic] | None:
    """The record's ECE as a statistic over its images sorted by id (report/per_image.py's reader), or None."""
    got = read_confidences(folder)
    if got is None:
        return None
    ids, conf, correct = got
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    return [ids[i] for i in order], ECEStatistic(conf[order], correct[order])


Curve = tuple[str, str | None, np.ndarray, np.ndarray]  # label, method, confidence, correct


def reliability_series(records: list[tuple[Path, dict[str, Any]]]) -> list[tuple[str, list[Curve]]]:
    """Per test set (dataset and data identity, protocol aside: the curves of several protocols are told apart by
    the label), one curve per checkpoint's newest classification record with per-image confidences."""
    groups: dict[tuple[str, Any], list[Curve]] = {}
    sizes: dict[tuple[str, Any], Any] = {}
    for path, rec in newest_per_cell(records, "classification"):
        got = read_confidences(path.parent)
        if got is None:
            continue
        key = (str(rec.get("dataset")), cell_key(rec)[0])
        ck = rec["checkpoint"]
        label = ck.get("method") or Path(str(ck.get("path"))).stem
        groups.setdefault(key, []).append((f"{label} ({str(ck['sha256'])[:8]})", ck.get("method"), got[1], got[2]))
        sizes[key] = (rec.get("data") or {}).get("num_images", len(got[0]))
    out = []
    for key in sorted(groups, key=lambda k: (k[0], str(k[1]))):
        name = data_label(key[1], sizes[key]) if sum(k[0] == key[0] for k in groups) > 1 else key[0]
        out.append((name, sorted(groups[key], key=lambda c: c[0])))
    return out


def plot_reliability(series: list[tuple[str, list[Curve]]], path: str | os.PathLike) -> Path:
    """One panel per test set: each checkpoint's accuracy against mean confidence per ECE bin (non-empty bins,
    marker size growing with the bin's share of images), the diagonal of perfect calibration; ECE in the legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..robustness.figures import METHOD_COLOURS

    if not series:
        raise ConfigError("no classification record with per-image confidences: run tools/test_cls.py first")
    fig = Figure(figsize=(4.2 * len(series), 4.4), dpi=110)
    FigureCanvasAgg(fig)
    for k, (name, curves) in enumerate(series):
        ax = fig.add_subplot(1, len(series), k + 1)
        ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfect calibration")
        for i, (label, method, conf, correct) in enumerate(curves):
            b = display_bins(conf, correct)
            keep = b["count"] > 0
            colour = METHOD_COLOURS.get(method or "", f"C{i}")
            ece = expected_calibration_error(conf, correct)
            ax.plot(b["confidence"][keep], b["accuracy"][keep], color=colour, linewidth=1.2)
            share = b["count"][keep] / b["count"].sum()
            ax.scatter(b["confidence"][keep], b["accuracy"][keep], s=8 + 120 * share, color=colour, zorder=3)
            ax.plot([], [], color=colour, marker="o", label=f"{label}: ECE {ece:.2f}%")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(f"mean confidence (max softmax) per bin, {ECE_BINS} bins")
        ax.set_ylabel("accuracy")
        ax.set_title(name, fontsize=9, wrap=True)
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle("Reliability: accuracy against confidence (below the diagonal: over-confident)", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
