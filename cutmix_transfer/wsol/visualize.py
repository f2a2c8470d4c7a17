"""Figures for WSOL: CAM heatmaps over images with GT (green) and predicted (cyan) boxes, best/worst grids,
BoxAcc-vs-threshold curves, the PxAP precision-recall curve. Drawing only: the evaluator's outputs module picks
the images and gives their maps (wsol/outputs.py), CAM overlays for arbitrary images live in wsol/vis_cam.py.

Boxes are x0y0x1y1 inclusive pixel indices in the 224x224 frame the CAM was scored in (the +1 convention of
the metrics): a box [x0, x1] covers pixel columns x0..x1. Overlays are drawn on a nearest-neighbour upscaled
copy (``scale``), so a box outline lies exactly on the border pixels of the box it stands for.
Figures are built with matplotlib's object API (no pyplot global state) and written atomically as PNG.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..io import atomic_write_bytes

logger = logging.getLogger(__name__)

GT_COLOR = (0, 230, 0)  # RGB
PRED_COLOR = (0, 220, 255)
OUTLINE_COLOR = (0, 0, 0)
CMAP = "inferno"  # dark-to-bright, no green/cyan in it: both box colours stay visible
GRID_MAX = 8


# ----------------------------------------------------------------------------------------------------------
# Pixel-level composition (pure numpy / OpenCV, tested directly)
# ----------------------------------------------------------------------------------------------------------
def colorize(scoremap: np.ndarray, cmap: str = CMAP) -> np.ndarray:
    """(H, W) float in [0, 1] -> (H, W, 3) uint8 RGB through a matplotlib colour map."""
    from matplotlib import colormaps

    s = np.clip(np.nan_to_num(np.asarray(scoremap, dtype=np.float64)), 0.0, 1.0)
    rgba = colormaps[cmap](s)
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def draw_box(
    canvas: np.ndarray,
    box_xyxy: Sequence[float],
    color: tuple[int, int, int],
    scale: int = 1,
    thickness: int = 2,
    outline: bool = True,
) -> np.ndarray:
    """Draw an inclusive-pixel box (x0 y0 x1 y1 in the unscaled frame) on an RGB canvas upscaled by `scale`, in place.

    The coloured band covers the outermost `thickness` canvas pixels of the box's area [x0*s, (x1+1)*s - 1];
    with outline=True a one-pixel dark line runs just inside the band so the box reads on any background.
    """
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box_xyxy)
    ax0, ay0 = x0 * scale, y0 * scale
    ax1, ay1 = (x1 + 1) * scale - 1, (y1 + 1) * scale - 1
    ax0, ay0 = max(0, ax0), max(0, ay0)
    ax1, ay1 = min(w - 1, ax1), min(h - 1, ay1)
    if ax1 < ax0 or ay1 < ay0:
        return canvas
    t = max(1, int(thickness))
    if outline and ax1 - ax0 > 2 * t and ay1 - ay0 > 2 * t:
        cv2.rectangle(canvas, (ax0 + t, ay0 + t), (ax1 - t, ay1 - t), OUTLINE_COLOR, 1)
    for k in range(t):
        if ax1 - k < ax0 + k or ay1 - k < ay0 + k:
            break
        cv2.rectangle(canvas, (ax0 + k, ay0 + k), (ax1 - k, ay1 - k), tuple(int(c) for c in color), 1)
    return canvas


def compose_overlay(
    image_rgb: np.ndarray,
    scoremap: np.ndarray | None,
    gt_boxes_xyxy: np.ndarray | None = None,
    pred_boxes_xyxy: np.ndarray | None = None,
    scale: int = 2,
    alpha: float = 0.6,
    cmap: str = CMAP,
    thickness: int | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8 image + (H, W) [0, 1] CAM -> (H*scale, W*scale, 3) uint8: heatmap blended over the image
    (weight `alpha`; scoremap None: the image alone), GT boxes green, predicted boxes cyan (x0y0x1y1 inclusive,
    in the image's frame), bands `thickness` canvas pixels wide (default max(2, scale))."""
    img = np.asarray(image_rgb, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3 or (scoremap is not None and img.shape[:2] != np.asarray(scoremap).shape):
        raise ValueError(
            f"image must be (H, W, 3) and match the (H, W) score map; got {img.shape} and "
            f"{None if scoremap is None else np.asarray(scoremap).shape}"
        )
    blend = img
    if scoremap is not None:
        heat = colorize(scoremap, cmap)
        blend = (img.astype(np.float32) * (1.0 - alpha) + heat.astype(np.float32) * alpha + 0.5).astype(np.uint8)
    canvas = np.ascontiguousarray(np.repeat(np.repeat(blend, scale, axis=0), scale, axis=1))
    thickness = max(2, scale) if thickness is None else int(thickness)
    for boxes, color in ((pred_boxes_xyxy, PRED_COLOR), (gt_boxes_xyxy, GT_COLOR)):
        if boxes is None:
            continue
        for box in np.asarray(boxes).reshape(-1, 4):
            draw_box(canvas, box, color, scale=scale, thickness=thickness, outline=scale >= 2)
    return canvas


# ----------------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------------
def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure on an Agg canvas (no pyplot global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: Path) -> Path:
    """Write the figure as PNG atomically; returns the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def colorbar(fig, ax, cmap: str = CMAP) -> None:
    """A colour bar right of `ax` (an axes or a list of axes; a list shrinks them all alike, so that side-by-side
    panels keep one size)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    sm = ScalarMappable(norm=Normalize(0, 1), cmap=colormaps[cmap])
    cb = fig.colorbar(sm, ax=ax, fraction=0.046 if not isinstance(ax, list) else 0.023, pad=0.02)
    cb.set_label("normalised CAM", fontsize=7)
    cb.ax.tick_params(labelsize=6)


def _legend(ax) -> None:
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(facecolor=np.array(GT_COLOR) / 255, label="GT box"),
            Patch(facecolor=np.array(PRED_COLOR) / 255, label="predicted box"),
        ],
        loc="lower center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=2,
        fontsize=6,
        frameon=False,
    )


@dataclass
class Case:
    """One image to draw: the scored 224x224 image and CAM, boxes in that frame, and a title."""

    image_rgb: np.ndarray
    scoremap: np.ndarray
    gt_boxes: np.ndarray
    pred_boxes: np.ndarray
    title: str
    extra: dict = field(default_factory=dict)


def save_case(path: str | os.PathLike, case: Case, scale: int = 2) -> Path:
    """The image with its boxes next to the CAM overlay (colour bar, legend), titled, as PNG."""
    fig = new_figure(8.4, 4.9)
    ax0, ax1 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax0.imshow(
        compose_overlay(case.image_rgb, None, case.gt_boxes, case.pred_boxes, scale=scale), interpolation="nearest"
    )
    ax1.imshow(
        compose_overlay(case.image_rgb, case.scoremap, case.gt_boxes, case.pred_boxes, scale=scale),
        interpolation="nearest",
    )
    for ax in (ax0, ax1):
        ax.axis("off")
    fig.suptitle(case.title, fontsize=8)
    colorbar(fig, [ax0, ax1])
    _legend(ax0)
    return save_png(fig, Path(path))


def save_grid(path: str | os.PathLike, rows: Sequence[tuple[str, Sequence[Case]]], scale: int = 2) -> Path:
    """A grid: one row per (label, cases), e.g. ('best', [...]) and ('worst', [...]), as PNG."""
    rows = [(label, list(cases)) for label, cases in rows if cases]
    if not rows:
        raise ValueError("save_grid needs at least one non-empty row of cases")
    ncol = max(len(c) for _, c in rows)
    fig = new_figure(2.6 * ncol + 0.4, 3.1 * len(rows))
    for r, (label, cases) in enumerate(rows):
        for c in range(ncol):
            ax = fig.add_subplot(len(rows), ncol, r * ncol + c + 1)
            ax.axis("off")
            if c >= len(cases):
                continue
            case = cases[c]
            ax.imshow(
                compose_overlay(case.image_rgb, case.scoremap, case.gt_boxes, case.pred_boxes, scale=scale),
                interpolation="nearest",
            )
            ax.set_title(case.title, fontsize=6.5)
            if c == 0:
                ax.text(
                    -0.08,
                    0.5,
                    label,
                    transform=ax.transAxes,
                    rotation=90,
                    va="center",
                    ha="right",
                    fontsize=9,
                    fontweight="bold",
                )
    fig.suptitle("GT boxes green, predicted boxes (largest contour at the MaxBoxAcc threshold) cyan", fontsize=7)
    return save_png(fig, Path(path))


def save_boxacc_curves(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """BoxAcc (%) against the CAM threshold for each IoU: V1 (largest box) solid, V2 (all boxes) dashed, the best
    threshold of each marked, the fixed paper threshold dotted; from a results.json record."""
    curves = record["curves"]
    thr = np.asarray(curves["thresholds"])
    ious = record["protocol"]["iou_thresholds"]
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for k, iou in enumerate(ious):
        col = colors[k % len(colors)]
        v1 = np.asarray(curves[f"boxacc_v1_iou{iou}"])
        v2 = np.asarray(curves[f"boxacc_v2_iou{iou}"])
        b1, b2 = int(v1.argmax()), int(v2.argmax())
        ax.plot(thr, v1, color=col, lw=1.5, label=f"V1 IoU {iou / 100:.1f}: max {v1[b1]:.1f} at {thr[b1]:.3g}")
        ax.plot(thr, v2, color=col, lw=1.2, ls="--", label=f"V2 IoU {iou / 100:.1f}: max {v2[b2]:.1f} at {thr[b2]:.3g}")
        ax.plot([thr[b1]], [v1[b1]], "o", color=col, ms=4)
        ax.plot([thr[b2]], [v2[b2]], "s", color=col, ms=3, mfc="none")
    fixed = record["protocol"]["fixed_threshold"]
    ax.axvline(fixed, color="gray", ls=":", lw=1)
    ax.text(fixed, 1, f" paper threshold {fixed:g}", color="gray", fontsize=6, va="bottom")
    m = record["metrics"]
    ax.set_title(
        f"{Path(record['checkpoint']['path']).name} on {record['dataset']} {record['split']} "
        f"({record['num_images']} images): MaxBoxAcc {m['maxboxacc']:.2f}, V2 {m['maxboxacc_v2']:.2f}",
        fontsize=8,
    )
    ax.set_xlabel("CAM threshold")
    ax.set_ylabel("BoxAcc (%)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper right")
    return save_png(fig, Path(path))


def save_pr_curve(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Pixel precision against recall (the curve PxAP integrates), from a results.json record with masks."""
    pr = record["curves"]["pxap"]
    precision = np.array([np.nan if p is None else p for p in pr["precision"]], dtype=np.float64)
    recall = np.asarray(pr["recall"], dtype=np.float64)
    fig = new_figure(4.6, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    ok = ~np.isnan(precision)
    ax.plot(recall[ok], precision[ok], color="tab:blue", lw=1.5)
    ax.set_xlabel("recall (foreground pixels)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(f"PxAP {record['metrics']['pxap']:.2f} ({record['num_mask_images']} masks)", fontsize=8)
    return save_png(fig, Path(path))


# ----------------------------------------------------------------------------------------------------------
# Titles of the evaluator's figures
# ----------------------------------------------------------------------------------------------------------
def _short(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "~"


def _display_name(name: str, index: int) -> str:
    """'001.Black_footed_Albatross' -> 'Black_footed_Albatross'; '' -> the index."""
    if not name:
        return str(index)
    head, dot, rest = name.partition(".")
    return rest if dot and head.isdigit() and rest else name


def case_title(row: dict[str, Any], threshold: float, compact: bool = False) -> str:
    """The title of one image's figure: id, GT and predicted class (saved maps: none), verdict, IoU."""
    gt = _display_name(row["class_name"], row["label"])
    if row["predicted"] == "":  # saved maps: no classification
        if compact:
            return f"{_short(Path(row['image_id']).name)}\nGT {_short(gt, 16)} ({row['label']})\nIoU {row['iou']:.2f}"
        return (
            f"#{row['index']} {row['image_id']}\nGT: {gt} ({row['label']})  |  saved map, no classification\n"
            f"IoU {row['iou']:.3f} at CAM threshold {threshold:.3g} (largest contour); 224x224 frame"
        )
    pred = _display_name(row["predicted_name"], row["predicted"])
    verdict = "right" if row["correct"] else "wrong"
    if compact:
        return (
            f"{_short(Path(row['image_id']).name)}\nGT {_short(gt, 16)} ({row['label']})\n"
            f"pred {_short(pred, 14)} ({row['predicted']}) {verdict}\nIoU {row['iou']:.2f}"
        )
    return (
        f"#{row['index']} {row['image_id']}\nGT: {gt} ({row['label']})  |  predicted: {pred} ({row['predicted']}) "
        f"p={row['confidence']:.2f} [{verdict}]\nIoU {row['iou']:.3f} at CAM threshold {threshold:.3g} "
        f"(largest contour); 224x224 frame"
    )
