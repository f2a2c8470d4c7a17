"""Figures for WSOL: CAM heatmaps over images with GT (green) and predicted (cyan) boxes, best/worst grids,
BoxAcc-vs-threshold curves, the PxAP precision-recall curve, and CAM overlays for arbitrary images (vis_cam).

Boxes are x0y0x1y1 inclusive pixel indices in the 224x224 frame the CAM was scored in (the +1 convention of
the metrics): a box [x0, x1] covers pixel columns x0..x1. Overlays are drawn on a nearest-neighbour upscaled
copy (``scale``), so a box outline lies exactly on the border pixels of the box it stands for.
Figures are built with matplotlib's object API (no pyplot global state) and written atomically as PNG.
"""
from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from ..cam import check_method
from ..errors import CheckpointError, ConfigError, DatasetError
from ..io import atomic_write_bytes
from ..runtime import check_input_size, resolve_device, seed_everything

logger = logging.getLogger(__name__)

GT_COLOR = (0, 230, 0)        # RGB
PRED_COLOR = (0, 220, 255)
OUTLINE_COLOR = (0, 0, 0)
CMAP = "inferno"             # dark-to-bright, no green/cyan in it: both box colours stay visible
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


def draw_box(canvas: np.ndarray, box_xyxy: Sequence[float], color: tuple[int, int, int], scale: int = 1,
             thickness: int = 2, outline: bool = True) -> np.ndarray:
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


def compose_overlay(image_rgb: np.ndarray, scoremap: np.ndarray | None, gt_boxes_xyxy: np.ndarray | None = None,
                    pred_boxes_xyxy: np.ndarray | None = None, scale: int = 2, alpha: float = 0.6,
                    cmap: str = CMAP, thickness: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 image + (H, W) [0, 1] CAM -> (H*scale, W*scale, 3) uint8: heatmap blended over the image
    (weight `alpha`; scoremap None: the image alone), GT boxes green, predicted boxes cyan (x0y0x1y1 inclusive,
    in the image's frame), bands `thickness` canvas pixels wide (default max(2, scale))."""
    img = np.asarray(image_rgb, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3 or (scoremap is not None and img.shape[:2] != np.asarray(scoremap).shape):
        raise ValueError(f"image must be (H, W, 3) and match the (H, W) score map; got {img.shape} and "
                         f"{None if scoremap is None else np.asarray(scoremap).shape}")
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
def _new_figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _colorbar(fig, ax, cmap: str = CMAP) -> None:
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

    ax.legend(handles=[Patch(facecolor=np.array(GT_COLOR) / 255, label="GT box"),
                       Patch(facecolor=np.array(PRED_COLOR) / 255, label="predicted box")],
              loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=6, frameon=False)


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
    fig = _new_figure(8.4, 4.9)
    ax0, ax1 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax0.imshow(compose_overlay(case.image_rgb, None, case.gt_boxes, case.pred_boxes, scale=scale),
               interpolation="nearest")
    ax1.imshow(compose_overlay(case.image_rgb, case.scoremap, case.gt_boxes, case.pred_boxes, scale=scale),
               interpolation="nearest")
    for ax in (ax0, ax1):
        ax.axis("off")
    fig.suptitle(case.title, fontsize=8)
    _colorbar(fig, [ax0, ax1])
    _legend(ax0)
    return _save_png(fig, Path(path))


def save_grid(path: str | os.PathLike, rows: Sequence[tuple[str, Sequence[Case]]], scale: int = 2) -> Path:
    """A grid: one row per (label, cases), e.g. ('best', [...]) and ('worst', [...]), as PNG."""
    rows = [(label, list(cases)) for label, cases in rows if cases]
    if not rows:
        raise ValueError("save_grid needs at least one non-empty row of cases")
    ncol = max(len(c) for _, c in rows)
    fig = _new_figure(2.6 * ncol + 0.4, 3.1 * len(rows))
    for r, (label, cases) in enumerate(rows):
        for c in range(ncol):
            ax = fig.add_subplot(len(rows), ncol, r * ncol + c + 1)
            ax.axis("off")
            if c >= len(cases):
                continue
            case = cases[c]
            ax.imshow(compose_overlay(case.image_rgb, case.scoremap, case.gt_boxes, case.pred_boxes, scale=scale),
                      interpolation="nearest")
            ax.set_title(case.title, fontsize=6.5)
            if c == 0:
                ax.text(-0.08, 0.5, label, transform=ax.transAxes, rotation=90, va="center", ha="right",
                        fontsize=9, fontweight="bold")
    fig.suptitle("GT boxes green, predicted boxes (largest contour at the MaxBoxAcc threshold) cyan", fontsize=7)
    return _save_png(fig, Path(path))


def save_boxacc_curves(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """BoxAcc (%) against the CAM threshold for each IoU: V1 (largest box) solid, V2 (all boxes) dashed, the best
    threshold of each marked, the fixed paper threshold dotted; from a results.json record."""
    curves = record["curves"]
    thr = np.asarray(curves["thresholds"])
    ious = record["protocol"]["iou_thresholds"]
    fig = _new_figure(6.4, 4.2)
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
    ax.set_title(f"{Path(record['checkpoint']['path']).name} on {record['dataset']} {record['split']} "
                 f"({record['num_images']} images): MaxBoxAcc {m['maxboxacc']:.2f}, V2 {m['maxboxacc_v2']:.2f}",
                 fontsize=8)
    ax.set_xlabel("CAM threshold")
    ax.set_ylabel("BoxAcc (%)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper right")
    return _save_png(fig, Path(path))


def save_pr_curve(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Pixel precision against recall (the curve PxAP integrates), from a results.json record with masks."""
    pr = record["curves"]["pxap"]
    precision = np.array([np.nan if p is None else p for p in pr["precision"]], dtype=np.float64)
    recall = np.asarray(pr["recall"], dtype=np.float64)
    fig = _new_figure(4.6, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    ok = ~np.isnan(precision)
    ax.plot(recall[ok], precision[ok], color="tab:blue", lw=1.5)
    ax.set_xlabel("recall (foreground pixels)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(f"PxAP {record['metrics']['pxap']:.2f} ({record['num_mask_images']} masks)", fontsize=8)
    return _save_png(fig, Path(path))


# ----------------------------------------------------------------------------------------------------------
# The evaluator's figures
# ----------------------------------------------------------------------------------------------------------
def _short(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "~"


def _display_name(name: str, index: int) -> str:
    """'001.Black_footed_Albatross' -> 'Black_footed_Albatross'; '' -> the index."""
    if not name:
        return str(index)
    head, dot, rest = name.partition(".")
    return rest if dot and head.isdigit() and rest else name


def _case_title(row: dict[str, Any], threshold: float, compact: bool = False) -> str:
    gt = _display_name(row["class_name"], row["label"])
    pred = _display_name(row["predicted_name"], row["predicted"])
    verdict = "right" if row["correct"] else "wrong"
    if compact:
        return (f"{_short(Path(row['image_id']).name)}\nGT {_short(gt, 16)} ({row['label']})\n"
                f"pred {_short(pred, 14)} ({row['predicted']}) {verdict}\nIoU {row['iou']:.2f}")
    return (f"#{row['index']} {row['image_id']}\nGT: {gt} ({row['label']})  |  predicted: {pred} ({row['predicted']}) "
            f"p={row['confidence']:.2f} [{verdict}]\nIoU {row['iou']:.3f} at CAM threshold {threshold:.3g} "
            f"(largest contour); 224x224 frame")


def write_eval_figures(vis_dir: str | os.PathLike, cfg: Any, data: Any, model: torch.nn.Module,
                       rows: list[dict[str, Any]], record: dict[str, Any], thresholds: np.ndarray,
                       best_threshold: float) -> dict[str, Path]:
    """Write <vis_dir>/curves.png, best_worst.png, pxap_pr.png (with masks) and images/<n>_<name>.png for the
    first cfg.vis images; CAMs of the shown images are recomputed exactly as scored (same model and pipeline)."""
    from .boxes import boxes_at_threshold, resize_boxes
    from .evaluate import compute_scoremaps, load_image_224

    vis_dir = Path(vis_dir)
    files = {"vis_curves": save_boxacc_curves(vis_dir / "curves.png", record)}
    if "pxap" in record["metrics"]:
        files["vis_pxap"] = save_pr_curve(vis_dir / "pxap_pr.png", record)
    if not rows:
        return files
    n = int(cfg.vis)
    k = min(n, GRID_MAX, len(rows))
    first = rows[:n]
    best = sorted(rows, key=lambda r: (-r["iou"], r["index"]))[:k]
    worst = sorted(rows, key=lambda r: (r["iou"], r["index"]))[:k]
    wanted = sorted({r["index"] for r in first + best + worst})
    samples = data.samples
    device = next(model.parameters()).device
    cases: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for start in range(0, len(wanted), max(1, int(cfg.batch_size))):
        chunk = wanted[start:start + int(cfg.batch_size)]
        loaded = [load_image_224(samples[i].path, input_size=cfg.input_size) for i in chunk]
        images = torch.stack([t for t, _, _ in loaded]).to(device)
        labels = torch.tensor([int(samples[i].label) for i in chunk], dtype=torch.int64)
        maps, _ = compute_scoremaps(model, images, labels, cfg.cam)
        for i, (_, rgb, size_wh), smap in zip(chunk, loaded, maps):
            s = samples[i]
            wh = tuple(s.size_wh) if all(s.size_wh) else size_wh
            gt = resize_boxes(s.boxes_xyxy, wh)
            pred = boxes_at_threshold(smap, best_threshold, multi_contour=False)
            cases[i] = (rgb, smap, gt, pred)
    by_index = {r["index"]: r for r in rows}

    def case(index: int, compact: bool) -> Case:
        rgb, smap, gt, pred = cases[index]
        return Case(rgb, smap, gt, pred, _case_title(by_index[index], best_threshold, compact))

    for j, row in enumerate(first):
        name = Path(row["image_id"]).stem
        files[f"vis_image_{j}"] = save_case(vis_dir / "images" / f"{j:04d}_{name}.png", case(row["index"], False))
    files["vis_grid"] = save_grid(vis_dir / "best_worst.png",
                                  [("best", [case(r["index"], True) for r in best]),
                                   ("worst", [case(r["index"], True) for r in worst])])
    logger.info("figures written to %s", vis_dir)
    return files


# ----------------------------------------------------------------------------------------------------------
# vis_cam: CAM overlays for any images
# ----------------------------------------------------------------------------------------------------------
@dataclass
class VisCamConfig:
    """Options of tools/vis_cam.py: which checkpoint, images, class (None: top-1), CAM method, output folder."""

    backbone: str | os.PathLike
    images: Sequence[str | os.PathLike]
    class_index: int | None = None
    class_names: str | os.PathLike | None = None
    arch: str | None = None
    cam: str = "cam"
    out: str | os.PathLike = "work_dirs/vis_cam"
    device: str = "auto"
    seed: int = 0
    trust_checkpoint: bool = False
    wsol_form: bool = True
    alpha: float = 0.5
    input_size: int = 224


def _name(names: list[str] | None, k: int) -> str:
    return f"{k} ({names[k]})" if names and 0 <= k < len(names) else str(k)


def vis_cam(cfg: VisCamConfig) -> list[Path]:
    """For each image: CAM of the chosen class (or the top-1 class) over the image at its own size, next to the
    plain image, titled with the class, its probability and the top-5; writes <out>/<n>_<stem>_cam.png."""
    from ..backbones import build_from_checkpoint
    from .evaluate import compute_scoremaps, load_image_224, read_class_names

    check_method(cfg.cam)
    if not cfg.images:
        raise ConfigError("no images given: pass one or more image paths after the options")
    check_input_size(cfg.input_size)
    if not 0.0 <= cfg.alpha <= 1.0:
        raise ConfigError(f"--alpha {cfg.alpha}: use a value in [0, 1]")
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    if not Path(cfg.backbone).is_file():
        raise CheckpointError(f"checkpoint not found: {cfg.backbone}; pass --backbone a classifier checkpoint")
    names = None
    if cfg.class_names is not None:
        names = read_class_names(cfg.class_names)
        if names is None:
            raise DatasetError(f"class-names file not found: {cfg.class_names}; pass CUB classes.txt, ImageNet "
                               f"LOC_synset_mapping.txt or a file with one name per line")
    model, loaded, _ = build_from_checkpoint(cfg.backbone, arch=cfg.arch, wsol=cfg.wsol_form,
                                             trust=cfg.trust_checkpoint, head="require")
    model = model.to(device).eval()
    k = model.num_classes
    if names is not None and len(names) != k:
        logger.warning("%d class names for a %d-class checkpoint; names are shown where they exist", len(names), k)
    if cfg.class_index is not None and not 0 <= cfg.class_index < k:
        raise ConfigError(f"--class {cfg.class_index}: {cfg.backbone} has {k} classes, use 0..{k - 1}")
    out = Path(cfg.out)
    written = []
    for j, image_path in enumerate(cfg.images):
        image_path = Path(image_path)
        if not image_path.is_file():
            raise DatasetError(f"image not found: {image_path}")
        try:
            tensor, _, size_wh = load_image_224(image_path, input_size=cfg.input_size)
            from PIL import Image

            with Image.open(image_path) as im:
                original = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except Exception as e:  # noqa: BLE001 -- any decoder failure
            raise DatasetError(f"unreadable image: {image_path} ({type(e).__name__}: {e}); pass an image file "
                               f"PIL can open") from None
        with torch.inference_mode():
            logits = model(tensor[None].to(device)).float().cpu()
        probs = torch.softmax(logits.double(), dim=1)[0].numpy()
        top1 = int(probs.argmax())
        cls = top1 if cfg.class_index is None else int(cfg.class_index)
        smap224, _ = compute_scoremaps(model, tensor[None], torch.tensor([cls]), cfg.cam)
        w, h = size_wh
        smap = np.clip(cv2.resize(smap224[0], (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        overlay = compose_overlay(original, smap, None, None, scale=1, alpha=cfg.alpha)
        top5 = np.argsort(-probs, kind="stable")[:5]
        fig = _new_figure(8.0, 4.4)
        ax0, ax1 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        ax0.imshow(original)
        ax0.set_title(f"{image_path.name} ({w}x{h})", fontsize=8)
        ax1.imshow(overlay)
        which = "top-1" if cfg.class_index is None else "requested"
        ax1.set_title(f"{cfg.cam.upper()} of class {_name(names, cls)} ({which}), p={probs[cls]:.3f}", fontsize=8)
        for ax in (ax0, ax1):
            ax.axis("off")
        _colorbar(fig, [ax0, ax1])
        fig.suptitle(f"{Path(cfg.backbone).name} ({loaded.arch}); top-5: "
                     + ", ".join(f"{_name(names, int(c))} {probs[c]:.2f}" for c in top5), fontsize=7)
        written.append(_save_png(fig, out / f"{j:03d}_{image_path.stem}_cam.png"))
        logger.info("%s: class %s p=%.3f (top-1 %s) -> %s", image_path, _name(names, cls), probs[cls],
                    _name(names, top1), written[-1])
    return written
