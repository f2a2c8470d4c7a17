"""Figures of the robustness curves: one run's curves.png, and the paper's Figure 5 layout with several
checkpoints overlaid (used by the report). Both read the `curves` block of a robustness result record."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the non-interactive backend)

from ..io import atomic_write_bytes  # noqa: E402

Curves = dict[str, Any]


def _save(fig: Any, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _style(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_ylim(-2, 102)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def plot_run_curves(curves: Curves, path: str | os.PathLike, title: str = "", clean_top1: float | None = None) -> None:
    """curves.png of one run: one panel per test that ran (FGSM, occlusion, Mixup / CutMix in-between)."""
    panels = []
    if "fgsm" in curves:
        panels.append("fgsm")
    if "occlusion" in curves:
        panels.append("occlusion")
    for kind in ("mixup", "cutmix"):
        if kind in curves.get("inbetween", {}):
            panels.append(kind)
    if not panels:
        raise ValueError("no curve to plot")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.1), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "fgsm":
            c = curves["fgsm"]
            xs, ys = list(c["eps"]), list(c["top1"])
            if clean_top1 is not None:
                xs, ys = [0.0] + xs, [clean_top1] + ys
            ax.plot(xs, ys, "o-", color="C3")
            for x, y in zip(xs, ys):
                ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
            _style(ax, "FGSM (eps 0 = clean)", "eps (1/255)", "top-1 accuracy (%)")
        elif panel == "occlusion":
            c = curves["occlusion"]
            ax.plot(c["hole_sizes"], c["center_top1_err"], "o-", label="centre occlusion", color="C0", ms=3)
            ax.plot(c["hole_sizes"], c["boundary_top1_err"], "s-", label="boundary occlusion", color="C1", ms=3)
            ax.legend(fontsize=7)
            _style(ax, "Occlusion", "hole size (224 frame)", "top-1 error (%)")
        else:
            c = curves["inbetween"][panel]
            ax.plot(c["ratios"], c["either"], "o-", label="either class", color="C2", ms=3)
            ax.plot(c["ratios"], c["dominant"], "s--", label="dominant class", color="C4", ms=3)
            ax.legend(fontsize=7)
            n = curves["inbetween"].get("num_pairs")
            _style(
                ax,
                f"{'Mixup' if panel == 'mixup' else 'CutMix'} in-between ({n} pairs)",
                "lambda (share of the first image x_A)",
                "predictions (%)",
            )
    if title:
        fig.suptitle(title, fontsize=9)
    _save(fig, path)


# The paper's Figure 5: (a) top-1 error against the hole size, centre and boundary occlusion; (b) the rate of
# predicting neither of the two classes against lambda, Mixup and CutMix in-between samples.
OVERLAY_PANELS: tuple[tuple[str, str, str, str, str], ...] = (
    ("occlusion", "center_top1_err", "Centre occlusion", "hole size (224 frame)", "top-1 error (%)"),
    ("occlusion", "boundary_top1_err", "Boundary occlusion", "hole size (224 frame)", "top-1 error (%)"),
    ("mixup", "neither", "Mixup in-between", "lambda (share of x_A, 1st image)", "neither class (%)"),
    ("cutmix", "neither", "CutMix in-between", "lambda (share of x_A, 1st image)", "neither class (%)"),
)
METHOD_COLOURS = {"baseline": "#7f7f7f", "mixup": "#1f77b4", "cutout": "#ff7f0e", "cutmix": "#d62728"}


def plot_overlay(series: Sequence[tuple[str, str | None, Curves]], path: str | os.PathLike) -> None:
    """The Figure 5 layout with one line per checkpoint: `series` holds (label, method or None, curves); one colour
    per pretraining method when each checkpoint has a distinct known method, else one per checkpoint."""
    if not series:
        raise ValueError("no robustness curves to overlay")
    methods = [method for _, method, _ in series]
    by_method = all(m in METHOD_COLOURS for m in methods) and len(set(methods)) == len(methods)
    colours = [METHOD_COLOURS[m] if by_method else f"C{i}" for i, m in enumerate(methods)]
    fig, axes = plt.subplots(1, len(OVERLAY_PANELS), figsize=(3.3 * len(OVERLAY_PANELS), 3.2), squeeze=False)
    for ax, (test, key, title, xlabel, ylabel) in zip(axes[0], OVERLAY_PANELS):
        drawn = 0
        for i, (label, _method, curves) in enumerate(series):
            if test == "occlusion":
                c = curves.get("occlusion")
                xs = c["hole_sizes"] if c else None
            else:
                c = curves.get("inbetween", {}).get(test)
                xs = c["ratios"] if c else None
            if not c:
                continue
            ax.plot(xs, c[key], "o-", ms=3, label=label, color=colours[i])
            drawn += 1
        _style(ax, title, xlabel, ylabel)
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no record", ha="center", va="center", transform=ax.transAxes, fontsize=8)
    fig.suptitle("Robustness curves by checkpoint (CutMix paper, Figure 5 layout)", fontsize=9)
    _save(fig, path)
