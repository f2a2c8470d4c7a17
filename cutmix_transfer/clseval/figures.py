"""The classification evaluation's figure: a reliability diagram (accuracy against mean confidence per ECE bin, the
gap to the diagonal shaded, the share of images per bin below), one panel per set of confidences (all images; with
temperature scaling the held-out images before and after). matplotlib's object API, written atomically as PNG."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_write_bytes
from .calibration import ECE_BINS, expected_calibration_error, reliability_bins

PANEL_IN = 3.4  # panel width, inches


def display_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """`reliability_bins` with the bin of confidences of exactly 1 merged into the last one ([14/15, 1]), for drawing
    n_bins bars."""
    b = reliability_bins(confidence, correct, n_bins)
    count = b["count"][:n_bins].copy()
    conf_sum = b["confidence"][:n_bins] * count
    acc_sum = b["accuracy"][:n_bins] * count
    count[-1] += b["count"][-1]
    conf_sum[-1] += b["confidence"][-1] * b["count"][-1]
    acc_sum[-1] += b["accuracy"][-1] * b["count"][-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "count": count,
            "confidence": np.where(count > 0, conf_sum / count, np.nan),
            "accuracy": np.where(count > 0, acc_sum / count, np.nan),
            "edges": b["edges"],
        }


def write_reliability_diagram(
    path: str | os.PathLike, panels: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = ""
) -> Path:
    """panels: name -> (confidence, correct) of its images; one reliability diagram each, side by side; -> path."""
    names = list(panels)
    fig = Figure(figsize=(PANEL_IN * len(names), PANEL_IN * 1.35), dpi=110)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, len(names), height_ratios=(3, 1), hspace=0.08)
    for col, name in enumerate(names):
        conf, correct = panels[name]
        b = display_bins(conf, correct)
        lo, width = b["edges"][:-1], np.diff(b["edges"])
        ax = fig.add_subplot(grid[0, col])
        filled = b["count"] > 0
        ax.bar(
            lo[filled],
            b["accuracy"][filled],
            width=width[filled],
            align="edge",
            color="tab:blue",
            edgecolor="black",
            linewidth=0.5,
            label="accuracy",
        )
        gap_lo = np.minimum(b["accuracy"], b["confidence"])[filled]
        gap_h = np.abs(b["accuracy"] - b["confidence"])[filled]
        ax.bar(
            lo[filled],
            gap_h,
            bottom=gap_lo,
            width=width[filled],
            align="edge",
            color="tab:red",
            alpha=0.3,
            edgecolor="tab:red",
            linewidth=0.5,
            label="gap to confidence",
        )
        ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xticklabels([])
        ece = expected_calibration_error(conf, correct)
        ax.set_title(f"{name}: ECE {ece:.2f}%, n = {len(conf)}", fontsize=9)
        if col == 0:
            ax.set_ylabel("accuracy")
            ax.legend(loc="upper left", fontsize=7)
        share = fig.add_subplot(grid[1, col])
        share.bar(lo, b["count"] / max(1.0, b["count"].sum()), width=width, align="edge", color="gray")
        share.set_xlim(0, 1)
        share.set_xlabel(f"confidence (max softmax), {ECE_BINS} bins")
        if col == 0:
            share.set_ylabel("share")
    if title:
        fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
