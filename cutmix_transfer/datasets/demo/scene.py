"""The demo's scenes: class tables (hues, names, CUB folders, synsets, VOC names), the renderer, per-image RNGs.

Scene design A of the measured demo experiment (shared/DEMO_NOTES.md): an elliptic, striped body
(0.28-0.46 of the image side), weakly tinted with its class hue (the right hue 80% of the time), carries a
small fully saturated square "head" with a 1-px black border (side max(9 px, 0.35 x body minor diameter),
about 11% of the body area) that alone tells the class; the background is blurred blobs with lines and
noise. A plain classifier can solve the task from the head, so its CAM tends to cover only the head: the
situation CutMix was made for.

Boxes are the body's bounding box (head included), x0 y0 x1 y1 with exclusive x1/y1 (pixel columns x0..x1-1);
each layout's writer module turns them into its own file convention. Masks are the body.
Every image has its own RNG, seeded from (seed, stream, index): same seed -> identical bytes.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ...errors import ConfigError

# mmdet 3.x VOCDataset.METAINFO['classes'], in its order (the 20 PASCAL VOC classes).
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

# Hue names every 30 degrees; demo class k gets hue 360*k/N and the nearest free name.
_HUE_NAMES = (
    "red",
    "orange",
    "yellow",
    "chartreuse",
    "green",
    "spring",
    "cyan",
    "azure",
    "blue",
    "violet",
    "magenta",
    "rose",
)


# ----------------------------------------------------------------------------------------------- classes


def demo_class_hues(num_classes: int) -> list[float]:
    """Hue in degrees [0, 360) of each demo class: evenly spaced around the colour circle."""
    check_num_classes(num_classes)
    return [360.0 * k / num_classes for k in range(num_classes)]


def _hue_name_indices(num_classes: int) -> list[int]:
    names = []
    for hue in demo_class_hues(num_classes):
        names.append(int(round(hue / 30.0)) % len(_HUE_NAMES))
    return names


def demo_class_names(num_classes: int = 10) -> list[str]:
    """Short unique names of the demo classes, e.g. ['red', 'orange', ...] (the head's colour)."""
    out, seen = [], set()
    for k, idx in enumerate(_hue_name_indices(num_classes)):
        name = _HUE_NAMES[idx]
        if name in seen:
            name = f"{name}_{k}"
        seen.add(name)
        out.append(name)
    return out


def demo_cub_class_dirs(num_classes: int = 10) -> list[str]:
    """CUB-style class folder names '001.Red_headed_blob', ... (classes.txt order, 1-based prefix)."""
    return [f"{k + 1:03d}.{n.capitalize()}_headed_blob" for k, n in enumerate(demo_class_names(num_classes))]


def demo_synsets(num_classes: int = 10) -> list[str]:
    """Invented, well-formed WordNet ids ('n9' + 7 digits) for the demo classes, sorted like the real list."""
    check_num_classes(num_classes)
    return [f"n9{k:07d}" for k in range(num_classes)]


def demo_voc_class_names(num_classes: int = 10) -> list[str]:
    """The VOC class name each demo class is written as: the first N names of mmdet's VOC order."""
    if num_classes > len(VOC_CLASSES):
        raise ConfigError(
            f"num_classes={num_classes}: the VOC layout has only {len(VOC_CLASSES)} class names; "
            f"use --num-classes <= 20 or leave 'voc' out of --layouts."
        )
    return list(VOC_CLASSES[:num_classes])


def demo_class_mapping(num_classes: int = 10) -> list[dict]:
    """One dict per demo class: index, name, hue, CUB folder, synset, VOC name (used by every layout)."""
    voc = list(VOC_CLASSES[:num_classes]) + [None] * max(0, num_classes - len(VOC_CLASSES))
    return [
        dict(index=k, name=n, hue=h, cub_dir=c, synset=s, voc_name=v)
        for k, (n, h, c, s, v) in enumerate(
            zip(
                demo_class_names(num_classes),
                demo_class_hues(num_classes),
                demo_cub_class_dirs(num_classes),
                demo_synsets(num_classes),
                voc,
            )
        )
    ]


def check_num_classes(num_classes: int) -> None:
    """ConfigError unless `num_classes` is an integer of at least 2."""
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ConfigError(f"num_classes={num_classes!r}: the demo needs at least 2 classes.")


def class_hue_names(num_classes: int) -> list[str]:
    """The plain hue name of each demo class ('red', 'orange', ...), without the '_k' suffix of repeated names."""
    return [_HUE_NAMES[i] for i in _hue_name_indices(num_classes)]


# ----------------------------------------------------------------------------------------------- scenes


@dataclass
class SceneObject:
    """One object of a scene. Boxes are x0 y0 x1 y1 float32 with exclusive x1/y1; mask is (H, W) bool."""

    label: int
    tint_label: int  # whose hue tints the body (== label 80% of the time)
    box_xyxy: np.ndarray  # (4,) bounding box of `mask`
    head_box_xyxy: np.ndarray  # (4,) the square head, border included
    mask: np.ndarray  # (H, W) bool: body and head
    body_mask: np.ndarray  # (H, W) bool: the striped ellipse alone (the head sits inside it)
    difficult: bool = False  # a tiny object (the VOC layout writes difficult=1)
    elongation: float = 1.0  # major / minor body diameter


@dataclass
class Scene:
    """A rendered scene: RGB uint8 image (H, W, 3) and its objects."""

    image: np.ndarray
    objects: list[SceneObject] = field(default_factory=list)


def _rgb(hue_deg: float, sat: float, val: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, sat, val), dtype=np.float32) * 255.0


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Cluttered background (H, W, 3) float32 RGB: smooth colour field + blurred blobs + sharp lines."""
    side = min(h, w)
    gh, gw = int(rng.integers(3, 6)), int(rng.integers(3, 6))
    img = cv2.resize(rng.uniform(40, 215, size=(gh, gw, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(6, 14))):
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.uniform(0.04, 0.18) * side) + 1, int(rng.uniform(0.04, 0.18) * side) + 1)
        color = tuple(float(c) for c in rng.uniform(20, 235, 3))
        cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=max(0.8, side / 40.0))
    for _ in range(int(rng.integers(3, 9))):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        color = tuple(float(c) for c in rng.uniform(10, 245, 3))
        cv2.line(img, p0, p1, color, int(rng.integers(1, 3)), cv2.LINE_AA)
    return img


def _mask_box(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


def _draw_object(
    rng: np.random.Generator,
    img: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    label: int,
    hues: Sequence[float],
    diam: tuple[float, float],
    center: tuple[float, float],
    angle: float,
    tint_match: float,
    difficult: bool,
) -> SceneObject:
    """Paint one striped body with its head into `img` (float32 RGB, in place) and return its record."""
    num_classes = len(hues)
    ys, xs = grid
    a, b = diam[0] / 2.0, diam[1] / 2.0
    cx, cy = center
    ca, sa = np.cos(angle), np.sin(angle)
    dx, dy = xs + 0.5 - cx, ys + 0.5 - cy
    u, v = (dx * ca + dy * sa) / a, (-dx * sa + dy * ca) / b
    mask = u * u + v * v <= 1.0

    # Body: weakly tinted stripes; the tint is the class hue 80% of the time, another class's otherwise.
    if rng.random() < tint_match:
        tint = label
    else:
        others = [k for k in range(num_classes) if k != label]
        tint = int(others[int(rng.integers(0, len(others)))])
    base = _rgb(hues[tint], rng.uniform(0.22, 0.38), rng.uniform(0.6, 0.9))
    dark = base * rng.uniform(0.45, 0.65)
    side = min(img.shape[:2])
    period = rng.uniform(3.5, 7.0) * max(1.0, side / 96.0) if not difficult else rng.uniform(2.5, 4.0)
    phi = rng.uniform(0, np.pi)
    phase = ((xs * np.cos(phi) + ys * np.sin(phi)) / period + rng.random()) % 1.0
    stripes = np.where((phase < 0.5)[..., None], dark, base)
    img[mask] = stripes[mask]

    # Head: fully saturated class hue, 1-px black border, placed inside the body.
    minor = 2.0 * min(a, b)
    s = int(round(min(max(9.0, 0.35 * minor), 0.6 * minor)))
    s = max(s, 3)
    h_img, w_img = mask.shape
    d = s * 0.7072 + 1.0
    hx0 = hy0 = None
    for _ in range(8):
        r, t = np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        lu, lv = r * np.cos(t) * max(a - d, 0.0), r * np.sin(t) * max(b - d, 0.0)
        px, py = cx + lu * ca - lv * sa, cy + lu * sa + lv * ca
        x0, y0 = int(round(px - s / 2.0)), int(round(py - s / 2.0))
        if 0 <= x0 and 0 <= y0 and x0 + s <= w_img and y0 + s <= h_img and mask[y0 : y0 + s, x0 : x0 + s].all():
            hx0, hy0 = x0, y0
            break
    if hx0 is None:  # tiny body: centre the head (it may overhang the body slightly)
        hx0 = int(np.clip(round(cx - s / 2.0), 0, w_img - s))
        hy0 = int(np.clip(round(cy - s / 2.0), 0, h_img - s))
    body_mask = mask.copy()
    img[hy0 : hy0 + s, hx0 : hx0 + s] = 0.0
    img[hy0 + 1 : hy0 + s - 1, hx0 + 1 : hx0 + s - 1] = _rgb(hues[label], 1.0, 1.0)
    mask[hy0 : hy0 + s, hx0 : hx0 + s] = True
    head = np.array([hx0, hy0, hx0 + s, hy0 + s], dtype=np.float32)
    return SceneObject(
        label=int(label),
        tint_label=int(tint),
        box_xyxy=_mask_box(mask),
        head_box_xyxy=head,
        mask=mask,
        body_mask=body_mask,
        difficult=bool(difficult),
        elongation=float(max(a, b) / min(a, b)),
    )


def _finish(rng: np.random.Generator, img: np.ndarray, noise_std: float) -> np.ndarray:
    img = img + rng.normal(0.0, noise_std, size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_scene(
    rng: np.random.Generator,
    width: int,
    height: int,
    labels: Sequence[int],
    num_classes: int,
    size_range: tuple[float, float] = (0.28, 0.46),
    tiny_prob: float = 0.0,
    tiny_range: tuple[float, float] = (0.06, 0.10),
    tint_match: float = 0.8,
    noise_std: float = 6.0,
    max_tries: int = 30,
) -> Scene:
    """Render a scene holding one object per entry of `labels` (non-overlapping; an object that finds no
    free place after `max_tries` is left out). Body diameters are `size_range` x min(width, height);
    with probability `tiny_prob` an object is tiny (`tiny_range`) and marked difficult."""
    hues = demo_class_hues(num_classes)
    img = _background(rng, height, width)
    grid = np.mgrid[0:height, 0:width].astype(np.float32)
    grid = (grid[0], grid[1])
    side = float(min(width, height))
    objects: list[SceneObject] = []
    for label in labels:
        if not 0 <= int(label) < num_classes:
            raise ConfigError(f"label {label} outside 0..{num_classes - 1}")
        tiny = bool(rng.random() < tiny_prob)
        lo, hi = tiny_range if tiny else size_range
        d1, d2 = rng.uniform(lo, hi) * side, rng.uniform(lo, hi) * side
        d1, d2 = max(d1, 4.0), max(d2, 4.0)
        angle = float(rng.uniform(0, np.pi))
        a, b = d1 / 2.0, d2 / 2.0
        ex = np.sqrt((a * np.cos(angle)) ** 2 + (b * np.sin(angle)) ** 2)
        ey = np.sqrt((a * np.sin(angle)) ** 2 + (b * np.cos(angle)) ** 2)
        placed = None
        for _ in range(max_tries):
            cx = rng.uniform(ex + 1.0, max(ex + 1.0, width - ex - 1.0))
            cy = rng.uniform(ey + 1.0, max(ey + 1.0, height - ey - 1.0))
            cand = np.array([cx - ex - 2, cy - ey - 2, cx + ex + 2, cy + ey + 2])
            if all(_disjoint(cand, o.box_xyxy) for o in objects):
                placed = (cx, cy)
                break
        if placed is None:
            continue
        objects.append(_draw_object(rng, img, grid, int(label), hues, (d1, d2), placed, angle, tint_match, tiny))
    return Scene(image=_finish(rng, img, noise_std), objects=objects)


def _disjoint(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def jitter_size(rng: np.random.Generator, size: int, vary: float) -> tuple[int, int]:
    """(width, height) around `size` (each side times U(1 - vary, 1 + vary)); square when vary == 0."""
    if vary <= 0:
        return size, size
    w = int(round(size * rng.uniform(1 - vary, 1 + vary)))
    h = int(round(size * rng.uniform(1 - vary, 1 + vary)))
    return max(w, 16), max(h, 16)


# ----------------------------------------------------------------------------------------------- RNG streams

# Stream ids: one per (layout, split), so subsets and counts of one do not change another's images. A new layout
# takes new ids here (never reuse or renumber one: the id is part of every image's seed).
STREAMS = {
    "cub": 1,
    "imagenet_val": 2,
    "imagenet_train": 3,
    "voc2007": 4,
    "voc2007_test": 5,
    "voc2012": 6,
    "coco_train": 7,
    "coco_val": 8,
    "order": 9,
    "cifar_train": 10,
    "cifar_test": 11,
    "ood_backgrounds": 12,
    "ood_backgrounds_resize": 13,
    "ood_crops_48": 14,
    "openimages_train": 15,
    "openimages_val": 16,
    "openimages_test": 17,
}


def image_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """The RNG of one image (or one shuffle): independent of every other (seed, stream, index)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream), int(index)]))


def balanced_labels(seed: int, stream: int, num_classes: int, per_class: int) -> list[int]:
    """`per_class` labels of each class in a seeded shuffled order (the order stream of `stream`)."""
    labels = np.repeat(np.arange(num_classes), per_class)
    image_rng(seed, STREAMS["order"], stream).shuffle(labels)
    return [int(x) for x in labels]
