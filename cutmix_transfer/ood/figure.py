"""The OOD evaluation's figure: one histogram panel per OOD set (in- vs out-of-distribution scores on shared
bins) and one panel with every set's ROC curve (in-distribution positive). matplotlib's object API, written
atomically as PNG."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_write_bytes
from .data import IN_DISTRIBUTION_KEY
from .metrics import roc_points

BINS = 50
PANEL_IN = 3.2  # panel side, inches
MAX_COLUMNS = 4


def _bins(scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """BINS equal bins over the range of every score (a constant score gets a unit-wide range)."""
    lo = min(float(np.min(s)) for s in scores.values())
    hi = max(float(np.max(s)) for s in scores.values())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, BINS + 1)


def write_ood_figure(
    path: str | os.PathLike, scores: Mapping[str, np.ndarray], per_set: Mapping[str, Mapping[str, Any]], title: str = ""
) -> Path:
    """Histograms of `scores[IN_DISTRIBUTION_KEY]` against each OOD set's scores, then the ROC curves; -> path."""
    in_scores = np.asarray(scores[IN_DISTRIBUTION_KEY], dtype=np.float64)
    sets = [k for k in scores if k != IN_DISTRIBUTION_KEY]
    n_panels = len(sets) + 1
    cols = min(MAX_COLUMNS, n_panels)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(PANEL_IN * cols, PANEL_IN * rows * 0.85), dpi=110)
    FigureCanvasAgg(fig)
    bins = _bins(scores)
    for i, name in enumerate(sets):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.hist(in_scores, bins=bins, density=True, alpha=0.55, color="tab:blue", label="in-distribution")
        ax.hist(
            np.asarray(scores[name], dtype=np.float64),
            bins=bins,
            density=True,
            alpha=0.55,
            color="tab:orange",
            label=name,
        )
        m = per_set.get(name, {})
        sub = f"AUROC {m['auroc']:.1f}, TNR@95 {m['tnr_at_tpr95']:.1f}" if "auroc" in m else ""
        ax.set_title(f"{name}\n{sub}", fontsize=8)
        ax.set_xlabel("score (higher = in-distribution)", fontsize=7)
        ax.set_ylabel("density", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, loc="upper left")
    ax = fig.add_subplot(rows, cols, n_panels)
    for name in sets:
        fpr, tpr, _ = roc_points(in_scores, scores[name])
        auroc = per_set.get(name, {}).get("auroc")
        ax.plot(fpr, tpr, lw=1.2, label=f"{name} ({auroc:.1f})" if auroc is not None else name)
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    ax.axhline(0.95, color="0.6", lw=0.6, ls=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("FPR (OOD accepted)", fontsize=7)
    ax.set_ylabel("TPR (in-distribution accepted)", fontsize=7)
    ax.set_title("ROC (AUROC)", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
