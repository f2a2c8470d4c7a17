"""Seeded generator of small scenes in the real on-disk layouts (CUB, ImageNet val, VOC, COCO captions).

Scene design A of the measured demo experiment (shared/DEMO_NOTES.md): an elliptic, striped body
(0.28-0.46 of the image side), weakly tinted with its class hue (the right hue 80% of the time), carries a
small fully saturated square "head" with a 1-px black border (side max(9 px, 0.35 x body minor diameter),
about 11% of the body area) that alone tells the class; the background is blurred blobs with lines and
noise. A plain classifier can solve the task from the head, so its CAM tends to cover only the head: the
situation CutMix was made for.

Boxes are the body's bounding box (head included), x0 y0 x1 y1 with exclusive x1/y1 (pixel columns x0..x1-1);
each layout then writes them in its own file convention (see `make_demo_data`). Masks are the body.
Every image has its own RNG, seeded from (seed, stream, index): same seed -> identical bytes.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import logging
import os
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import ConfigError
from ..io import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
LAYOUTS = ("cub", "imagenet", "voc", "coco")
LAYOUT_DIRS = {"cub": "CUB_200_2011", "imagenet": "ILSVRC", "voc": "VOCdevkit", "coco": "coco"}
MANIFEST = "demo_manifest.json"
COMPLETE_MARKER = ".demo_complete"
JPEG_QUALITY = 95

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
# Plain colour words for captions (several hue names share one word; captions stay natural).
_CAPTION_COLOR = {
    "red": "red",
    "orange": "orange",
    "yellow": "yellow",
    "chartreuse": "lime",
    "green": "green",
    "spring": "mint",
    "cyan": "cyan",
    "azure": "sky blue",
    "blue": "blue",
    "violet": "purple",
    "magenta": "magenta",
    "rose": "pink",
}


# ----------------------------------------------------------------------------------------------- classes


def demo_class_hues(num_classes: int) -> list[float]:
    """Hue in degrees [0, 360) of each demo class: evenly spaced around the colour circle."""
    _check_num_classes(num_classes)
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
    _check_num_classes(num_classes)
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


def _check_num_classes(num_classes: int) -> None:
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ConfigError(f"num_classes={num_classes!r}: the demo needs at least 2 classes.")


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
    img = cv2.resize(
        rng.uniform(40, 215, size=(gh, gw, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
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
        if (
            0 <= x0
            and 0 <= y0
            and x0 + s <= w_img
            and y0 + s <= h_img
            and mask[y0 : y0 + s, x0 : x0 + s].all()
        ):
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
        objects.append(
            _draw_object(rng, img, grid, int(label), hues, (d1, d2), placed, angle, tint_match, tiny)
        )
    return Scene(image=_finish(rng, img, noise_std), objects=objects)


def _disjoint(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream), int(index)]))


# ----------------------------------------------------------------------------------------------- writing


def _encode(img_rgb: np.ndarray, ext: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg", ".JPEG") else []
    arr = img_rgb[..., ::-1] if img_rgb.ndim == 3 else img_rgb
    ok, buf = cv2.imencode(ext.lower(), np.ascontiguousarray(arr), params)
    if not ok:
        raise RuntimeError(f"cv2.imencode failed for {ext}")
    return buf.tobytes()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _xml_text(root: ET.Element) -> str:
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="unicode") + "\n"


def _sub(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def _pascal_xml(
    folder: str,
    filename: str,
    width: int,
    height: int,
    objects: Iterable[tuple[str, list[int], int]],
    database: str,
    extra_source: dict[str, str] | None = None,
) -> str:
    """PASCAL-style annotation XML; objects are (name, [xmin, ymin, xmax, ymax], difficult)."""
    root = ET.Element("annotation")
    _sub(root, "folder", folder)
    _sub(root, "filename", filename)
    src = _sub(root, "source")
    _sub(src, "database", database)
    for k, v in (extra_source or {}).items():
        _sub(src, k, v)
    size = _sub(root, "size")
    _sub(size, "width", width)
    _sub(size, "height", height)
    _sub(size, "depth", 3)
    _sub(root, "segmented", 0)
    for name, box, difficult in objects:
        obj = _sub(root, "object")
        _sub(obj, "name", name)
        _sub(obj, "pose", "Unspecified")
        _sub(obj, "truncated", 0)
        _sub(obj, "difficult", int(difficult))
        bb = _sub(obj, "bndbox")
        for tag, val in zip(("xmin", "ymin", "xmax", "ymax"), box):
            _sub(bb, tag, int(val))
    return _xml_text(root)


def _jitter_size(rng: np.random.Generator, size: int, vary: float) -> tuple[int, int]:
    """(width, height) around `size` (each side times U(1 - vary, 1 + vary)); square when vary == 0."""
    if vary <= 0:
        return size, size
    w = int(round(size * rng.uniform(1 - vary, 1 + vary)))
    h = int(round(size * rng.uniform(1 - vary, 1 + vary)))
    return max(w, 16), max(h, 16)


# stream ids: one per (layout, split), so subsets and counts of one do not change another's images
_STREAM = {
    "cub": 1,
    "imagenet_val": 2,
    "imagenet_train": 3,
    "voc2007": 4,
    "voc2007_test": 5,
    "voc2012": 6,
    "coco_train": 7,
    "coco_val": 8,
    "order": 9,
}


def _balanced_labels(seed: int, stream: int, num_classes: int, per_class: int) -> list[int]:
    labels = np.repeat(np.arange(num_classes), per_class)
    _rng(seed, _STREAM["order"], stream).shuffle(labels)
    return [int(x) for x in labels]


def _write_cub(root: Path, spec: "DemoSpec", progress: bool) -> dict:
    """CUB_200_2011 raw layout + segmentations/ (PNG, 0/255). bounding_boxes.txt: x y w h with the body
    spanning pixel columns x..x+w-1, so wsolevaluation's x0,y0,x0+w,y0+h gives back the exclusive box."""
    n, dirs = spec.num_classes, demo_cub_class_dirs(spec.num_classes)
    images, labels_lines, split_lines, box_lines = [], [], [], []
    counters = [0] * n
    items = [(c, 1) for c in range(n) for _ in range(spec.per_class)]
    items += [(c, 0) for c in range(n) for _ in range(spec.test_per_class)]
    # interleave train and test within a class, like CUB's own image order
    items.sort(key=lambda t: t[0])
    order_rng = _rng(spec.seed, _STREAM["order"], _STREAM["cub"])
    for c in range(n):
        idx = [i for i, t in enumerate(items) if t[0] == c]
        flags = [items[i][1] for i in idx]
        order_rng.shuffle(flags)
        for i, f in zip(idx, flags):
            items[i] = (c, f)
    for i, (c, is_train) in enumerate(tqdm(items, desc="CUB_200_2011", disable=not progress), start=1):
        rng = _rng(spec.seed, _STREAM["cub"], i)
        scene = render_scene(rng, spec.image_size, spec.image_size, [c], n)
        obj = scene.objects[0]
        counters[c] += 1
        stem = f"{dirs[c].split('.', 1)[1]}_{counters[c]:04d}_{i}"
        rel = f"{dirs[c]}/{stem}.jpg"
        _write(root / "images" / rel, _encode(scene.image, ".jpg"))
        _write(
            root / "segmentations" / dirs[c] / f"{stem}.png", _encode(obj.mask.astype(np.uint8) * 255, ".png")
        )
        x0, y0, x1, y1 = obj.box_xyxy.tolist()
        images.append(f"{i} {rel}")
        labels_lines.append(f"{i} {c + 1}")
        split_lines.append(f"{i} {is_train}")
        box_lines.append(f"{i} {x0:.1f} {y0:.1f} {x1 - x0:.1f} {y1 - y0:.1f}")
    atomic_write_text(root / "images.txt", "\n".join(images) + "\n")
    atomic_write_text(root / "classes.txt", "".join(f"{k + 1} {d}\n" for k, d in enumerate(dirs)))
    atomic_write_text(root / "image_class_labels.txt", "\n".join(labels_lines) + "\n")
    atomic_write_text(root / "train_test_split.txt", "\n".join(split_lines) + "\n")
    atomic_write_text(root / "bounding_boxes.txt", "\n".join(box_lines) + "\n")
    atomic_write_text(
        root / "README",
        "cutmix_transfer demo data in the CUB-200-2011 layout (generated, "
        "not the real dataset). segmentations/ follows the separate CUB segmentation download.\n",
    )
    return {"train": n * spec.per_class, "test": n * spec.test_per_class}


def _write_imagenet(root: Path, spec: "DemoSpec", progress: bool) -> dict:
    """Kaggle ILSVRC layout. XML/CSV boxes are 0-based inclusive pixel indices (xmax = x1 - 1), like the
    real annotations, whose boxes reach at most width - 1."""
    n, syn = spec.num_classes, demo_synsets(spec.num_classes)
    names = demo_class_names(n)
    atomic_write_text(
        root / "LOC_synset_mapping.txt",
        "".join(f"{s} {nm} headed blob, {nm} square\n" for s, nm in zip(syn, names)),
    )
    counts = {}
    for split, per in (("val", spec.imagenet_val_per_class), ("train", spec.imagenet_train_per_class)):
        if per <= 0:
            continue
        stream = _STREAM[f"imagenet_{split}"]
        labels = _balanced_labels(spec.seed, stream, n, per)
        rows, per_syn = [], [0] * n
        for i, c in enumerate(tqdm(labels, desc=f"ILSVRC {split}", disable=not progress), start=1):
            rng = _rng(spec.seed, stream, i)
            w, h = _jitter_size(rng, spec.image_size, spec.size_jitter)
            # ImageNet val sometimes shows several instances of the class: 20% of images hold two.
            k = 2 if rng.random() < 0.2 else 1
            scene = render_scene(rng, w, h, [c] * k, n, size_range=(0.28, 0.46) if k == 1 else (0.22, 0.34))
            if split == "val":
                stem, sub = f"ILSVRC2012_val_{i:08d}", "val"
            else:
                per_syn[c] += 1
                stem, sub = f"{syn[c]}_{per_syn[c]}", f"train/{syn[c]}"
            _write(root / "Data" / "CLS-LOC" / sub / f"{stem}.JPEG", _encode(scene.image, ".JPEG"))
            boxes = [
                [int(b[0]), int(b[1]), int(b[2]) - 1, int(b[3]) - 1]
                for b in (o.box_xyxy for o in scene.objects)
            ]
            xml = _pascal_xml(
                split if split == "val" else syn[c],
                stem,
                w,
                h,
                [(syn[c], bx, 0) for bx in boxes],
                "ILSVRC_2012",
            )
            _write(root / "Annotations" / "CLS-LOC" / sub / f"{stem}.xml", xml.encode())
            rows.append((stem, " ".join(f"{syn[c]} {b[0]} {b[1]} {b[2]} {b[3]}" for b in boxes)))
        # the real CSVs are not sorted by image id
        _rng(spec.seed, _STREAM["order"], stream + 100).shuffle(rows)
        atomic_write_text(
            root / f"LOC_{split}_solution.csv",
            "ImageId,PredictionString\n" + "".join(f"{a},{b} \n" for a, b in rows),
        )
        counts[split] = len(labels)
    return counts


def _write_voc(root: Path, spec: "DemoSpec", progress: bool) -> dict:
    """VOCdevkit/VOC2007 (trainval + test) and VOC2012 (trainval). Boxes: 1-based inclusive pixel indices
    (xmin = x0 + 1, xmax = x1), the VOC convention; tiny objects are difficult=1."""
    n = spec.num_classes
    voc_names = demo_voc_class_names(n)
    counts = {}
    years = (
        ("VOC2007", "voc2007", "", spec.voc_trainval_images, spec.voc_test_images),
        ("VOC2012", "voc2012", "2012_", spec.voc_trainval_images, 0),
    )
    for year, key, prefix, n_trainval, n_test in years:
        ydir = root / year
        ids = {"trainval": [], "test": []}
        cls_flags: dict[str, dict[str, int]] = {}
        total = n_trainval + n_test
        for i in tqdm(range(1, total + 1), desc=year, disable=not progress):
            split = "trainval" if i <= n_trainval else "test"
            stream = _STREAM[key] if split == "trainval" else _STREAM["voc2007_test"]
            rng = _rng(spec.seed, stream, i if split == "trainval" else i - n_trainval)
            w, h = _jitter_size(rng, spec.det_image_size, spec.size_jitter)
            labels = [int(x) for x in rng.integers(0, n, size=int(rng.integers(1, 4)))]
            scene = render_scene(
                rng, w, h, labels, n, size_range=(0.16, 0.42), tiny_prob=0.15, tiny_range=(0.06, 0.10)
            )
            img_id = f"{prefix}{i:06d}"
            _write(ydir / "JPEGImages" / f"{img_id}.jpg", _encode(scene.image, ".jpg"))
            objs = [
                (
                    voc_names[o.label],
                    [int(o.box_xyxy[0]) + 1, int(o.box_xyxy[1]) + 1, int(o.box_xyxy[2]), int(o.box_xyxy[3])],
                    int(o.difficult),
                )
                for o in scene.objects
            ]
            xml = _pascal_xml(
                year,
                f"{img_id}.jpg",
                w,
                h,
                objs,
                f"The {year} Database",
                {"annotation": f"PASCAL {year}", "image": "cutmix_transfer demo"},
            )
            _write(ydir / "Annotations" / f"{img_id}.xml", xml.encode())
            ids[split].append(img_id)
            flags = {}
            for name, _, diff in objs:  # 1 present, 0 only difficult instances, -1 absent
                flags[name] = max(flags.get(name, 0), 0 if diff else 1)
            cls_flags[img_id] = flags
        tv = ids["trainval"]
        sets = {"trainval": tv, "train": tv[0::2], "val": tv[1::2]}
        if n_test:
            sets["test"] = ids["test"]
        main = ydir / "ImageSets" / "Main"
        for name, lst in sets.items():
            atomic_write_text(main / f"{name}.txt", "".join(f"{x}\n" for x in lst))
            for cname in VOC_CLASSES:  # the real devkit has all 20 per-class lists
                atomic_write_text(
                    main / f"{cname}_{name}.txt",
                    "".join(f"{x} {cls_flags[x].get(cname, -1):2d}\n" for x in lst),
                )
        counts[year] = {k: len(v) for k, v in sets.items()}
    return counts


_SYN = {
    "object": ["object", "shape", "blob", "thing", "figure"],
    "square": ["square", "patch", "block", "spot"],
    "background": ["cluttered background", "busy background", "noisy background", "messy background"],
    "striped": ["striped", "stripy", "banded"],
}
_TEMPLATES = [
    "a {size} {striped} {shape} {object} with a {color} {square} {pos}",
    "a {color} {square} on a {striped} {object} {pos}",
    "a {striped} {object} with a small {color} {square} on a {background}",
    "there is a {size} {shape} {object} {pos} with a {color} {square} on it",
    "a {shape} {striped} {object} marked {color} sits {pos} on a {background}",
    "a {color} {square} inside a {size} {striped} {object}",
    "the {striped} {object} {pos} has a {color} {square}",
]


def _caption_words(
    rng: np.random.Generator, obj: SceneObject, width: int, height: int, num_classes: int
) -> dict:
    color = _CAPTION_COLOR[_HUE_NAMES[_hue_name_indices(num_classes)[obj.label]]]
    x0, y0, x1, y1 = obj.box_xyxy.tolist()
    cx, cy = (x0 + x1) / 2.0 / width, (y0 + y1) / 2.0 / height
    area = (x1 - x0) * (y1 - y0) / float(width * height)
    horiz = "on the left" if cx < 0.4 else "on the right" if cx > 0.6 else "in the middle"
    vert = "at the top" if cy < 0.4 else "at the bottom" if cy > 0.6 else None
    pos = horiz if vert is None or rng.random() < 0.5 else vert
    return dict(
        color=color,
        size="large" if area > 0.16 else "small",
        shape="elongated" if obj.elongation > 1.3 else "round",
        pos=pos,
    )


def make_captions(
    rng: np.random.Generator, obj: SceneObject, width: int, height: int, num_classes: int, k: int = 5
) -> list[str]:
    """`k` template captions for a one-object scene (distinct templates, synonyms drawn from `rng`)."""
    words = _caption_words(rng, obj, width, height, num_classes)
    out = []
    for t in rng.choice(len(_TEMPLATES), size=k, replace=k > len(_TEMPLATES)):
        fill = dict(words)
        fill.update({key: vals[int(rng.integers(0, len(vals)))] for key, vals in _SYN.items()})
        text = re.sub(r"\ba (?=[aeiou])", "an ", _TEMPLATES[int(t)].format(**fill))
        if rng.random() < 0.5:  # COCO captions are written both ways
            text = text[0].upper() + text[1:] + "."
        out.append(text)
    return out


def caption_tokens(caption: str) -> list[str]:
    """Karpathy-style tokens: lower-case words, punctuation dropped."""
    return [w for w in "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in caption.lower()).split()]


def _write_coco(root: Path, spec: "DemoSpec", progress: bool) -> dict:
    """COCO 2014 captions layout + Karpathy's dataset_coco.json (train from train2014; val/test/restval
    from val2014)."""
    n = spec.num_classes
    info = {
        "description": "cutmix_transfer demo captions (generated, COCO 2014 layout)",
        "version": "1.0",
        "year": 2014,
        "contributor": "cutmix_transfer",
        "date_created": "2014-01-01 00:00:00",
    }
    licenses = [
        {"id": 1, "name": "CC0 (generated data)", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}
    ]
    karpathy, sent_id, ann_id, img_idx = [], 0, 1, 0
    counts = {}
    for split, count, id_base in (
        ("train", spec.coco_train_images, 1000000),
        ("val", spec.coco_val_images, 2000000),
    ):
        stream = _STREAM[f"coco_{split}"]
        labels = _balanced_labels(spec.seed, stream, n, -(-count // n))[:count]
        images, anns = [], []
        n_val = count // 4
        for i, c in enumerate(tqdm(labels, desc=f"coco {split}2014", disable=not progress), start=1):
            rng = _rng(spec.seed, stream, i)
            w, h = _jitter_size(rng, spec.image_size, spec.size_jitter)
            scene = render_scene(rng, w, h, [c], n)
            coco_id = id_base + i * 7  # sparse ids, like COCO's
            fname = f"COCO_{split}2014_{coco_id:012d}.jpg"
            _write(root / f"{split}2014" / fname, _encode(scene.image, ".jpg"))
            caps = make_captions(rng, scene.objects[0], w, h, n)
            images.append(
                {
                    "license": 1,
                    "file_name": fname,
                    "coco_url": "",
                    "height": h,
                    "width": w,
                    "date_captured": "2014-01-01 00:00:00",
                    "flickr_url": "",
                    "id": coco_id,
                }
            )
            sents = []
            for cap in caps:
                anns.append({"image_id": coco_id, "id": ann_id, "caption": cap})
                sents.append({"tokens": caption_tokens(cap), "raw": cap, "imgid": img_idx, "sentid": sent_id})
                ann_id += 1
                sent_id += 1
            if split == "train":
                ksplit = "train"
            else:
                ksplit = "val" if i <= n_val else "test" if i <= 2 * n_val else "restval"
            karpathy.append(
                {
                    "filepath": f"{split}2014",
                    "sentids": [s["sentid"] for s in sents],
                    "filename": fname,
                    "imgid": img_idx,
                    "split": ksplit,
                    "sentences": sents,
                    "cocoid": coco_id,
                }
            )
            img_idx += 1
        atomic_write_json(
            root / "annotations" / f"captions_{split}2014.json",
            {"info": info, "images": images, "licenses": licenses, "annotations": anns},
        )
        counts[split] = len(images)
    atomic_write_json(root / "dataset_coco.json", {"images": karpathy, "dataset": "coco"})
    counts["karpathy"] = {
        s: sum(1 for im in karpathy if im["split"] == s) for s in ("train", "val", "test", "restval")
    }
    return counts


# ----------------------------------------------------------------------------------------------- entry


@dataclass
class DemoSpec:
    """Everything that determines the demo's bytes (recorded in demo_manifest.json)."""

    seed: int = 0
    image_size: int = 96
    num_classes: int = 10
    per_class: int = 300
    test_per_class: int = 50
    imagenet_val_per_class: int = 50
    imagenet_train_per_class: int = 0
    det_image_size: int = 160
    voc_trainval_images: int = 300
    voc_test_images: int = 150
    coco_train_images: int = 600
    coco_val_images: int = 300
    size_jitter: float = 0.2
    layouts: tuple[str, ...] = LAYOUTS
    version: int = GENERATOR_VERSION


@dataclass
class DemoData:
    """What `make_demo_data` wrote: the root, the class mapping, and image counts per layout."""

    root: Path
    spec: DemoSpec
    classes: list[dict]
    counts: dict
    reused: bool = False

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.classes]


def _validate(spec: DemoSpec) -> None:
    _check_num_classes(spec.num_classes)
    if spec.image_size < 32 or spec.det_image_size < 32:
        raise ConfigError(
            f"image_size={spec.image_size}, det_image_size={spec.det_image_size}: use at least 32 px "
            f"(the head alone is 9 px)."
        )
    for name in (
        "per_class",
        "test_per_class",
        "imagenet_val_per_class",
        "imagenet_train_per_class",
        "voc_trainval_images",
        "voc_test_images",
        "coco_train_images",
        "coco_val_images",
    ):
        if getattr(spec, name) < 0:
            raise ConfigError(f"{name}={getattr(spec, name)}: counts cannot be negative.")
    if not 0.0 <= spec.size_jitter < 0.5:
        raise ConfigError(f"size_jitter={spec.size_jitter}: use a value in [0, 0.5).")
    unknown = [x for x in spec.layouts if x not in LAYOUTS]
    if unknown or not spec.layouts:
        raise ConfigError(f"layouts={list(spec.layouts)}: choose from {list(LAYOUTS)}.")
    if "voc" in spec.layouts:
        demo_voc_class_names(spec.num_classes)
    if "coco" in spec.layouts and 0 < spec.coco_val_images < 4:
        raise ConfigError(
            f"coco_val_images={spec.coco_val_images}: need at least 4 for the Karpathy val/test/"
            f"restval split (or 0)."
        )


def make_demo_data(
    out: str | os.PathLike,
    seed: int = 0,
    image_size: int = 96,
    per_class: int = 300,
    num_classes: int = 10,
    *,
    test_per_class: int | None = None,
    imagenet_val_per_class: int | None = None,
    imagenet_train_per_class: int = 0,
    det_image_size: int = 160,
    voc_trainval_images: int | None = None,
    voc_test_images: int | None = None,
    coco_train_images: int | None = None,
    coco_val_images: int | None = None,
    size_jitter: float = 0.2,
    layouts: Sequence[str] = LAYOUTS,
    force: bool = False,
    progress: bool = True,
) -> DemoData:
    """Generate the demo data under `out`: CUB_200_2011/, ILSVRC/, VOCdevkit/VOC2007 + VOC2012, coco/.

    `per_class` is CUB train images per class; unset counts follow it (CUB test and ImageNet val:
    per_class // 6; VOC trainval: per_class * num_classes // 10 per year, VOC2007 test half that; COCO
    train2014: per_class * num_classes // 5, val2014 half that). CUB images are square `image_size`;
    ImageNet/COCO sides and VOC (`det_image_size`) sides vary by +-`size_jitter`. A run that completes
    writes `.demo_complete` last; a rerun with the same settings reuses it, anything else regenerates.
    """
    derived = max(1, per_class // 6)
    spec = DemoSpec(
        seed=int(seed),
        image_size=int(image_size),
        num_classes=int(num_classes),
        per_class=int(per_class),
        test_per_class=derived if test_per_class is None else int(test_per_class),
        imagenet_val_per_class=derived if imagenet_val_per_class is None else int(imagenet_val_per_class),
        imagenet_train_per_class=int(imagenet_train_per_class),
        det_image_size=int(det_image_size),
        voc_trainval_images=(
            max(4, per_class * num_classes // 10) if voc_trainval_images is None else int(voc_trainval_images)
        ),
        voc_test_images=(
            max(2, per_class * num_classes // 20) if voc_test_images is None else int(voc_test_images)
        ),
        coco_train_images=(
            max(4, per_class * num_classes // 5) if coco_train_images is None else int(coco_train_images)
        ),
        coco_val_images=(
            max(4, per_class * num_classes // 10) if coco_val_images is None else int(coco_val_images)
        ),
        size_jitter=float(size_jitter),
        layouts=tuple(dict.fromkeys(layouts)),
    )
    _validate(spec)
    out = Path(out)
    manifest_path, marker = out / MANIFEST, out / COMPLETE_MARKER
    spec_json = json.dumps(asdict(spec), sort_keys=True)
    digest = hashlib.sha256(spec_json.encode()).hexdigest()

    if manifest_path.is_file() and marker.is_file() and not force:
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if marker.read_text().strip() == digest and old.get("spec_sha256") == digest:
            logger.info("demo data in %s is complete and matches the settings; reusing it", out)
            return DemoData(
                out, spec, demo_class_mapping(spec.num_classes), old.get("counts", {}), reused=True
            )

    existing = [LAYOUT_DIRS[k] for k in LAYOUTS if (out / LAYOUT_DIRS[k]).exists()]
    if existing and not manifest_path.is_file():
        raise ConfigError(
            f"{out} already holds {', '.join(existing)} that the demo generator did not write "
            f"(no {MANIFEST}); refusing to overwrite what may be a real dataset. Pass an empty "
            f"folder such as data/demo to --out."
        )
    if marker.exists():
        marker.unlink()
    for name in existing:  # ours (the manifest says so): a changed or interrupted run starts clean
        shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        manifest_path,
        {
            "generator": "cutmix_transfer.datasets.synthetic",
            "complete": False,
            "spec": asdict(spec),
            "spec_sha256": digest,
        },
    )

    writers = {"cub": _write_cub, "imagenet": _write_imagenet, "voc": _write_voc, "coco": _write_coco}
    counts = {}
    for key in spec.layouts:
        counts[key] = writers[key](out / LAYOUT_DIRS[key], spec, progress)
        logger.info("wrote %s: %s", out / LAYOUT_DIRS[key], counts[key])
    classes = demo_class_mapping(spec.num_classes)
    atomic_write_json(
        manifest_path,
        {
            "generator": "cutmix_transfer.datasets.synthetic",
            "complete": True,
            "spec": asdict(spec),
            "spec_sha256": digest,
            "classes": classes,
            "counts": counts,
            "dirs": {k: LAYOUT_DIRS[k] for k in spec.layouts},
        },
    )
    atomic_write_text(marker, digest + "\n")
    return DemoData(out, spec, classes, counts)


def read_demo_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a completed demo folder (spec, class mapping, counts); DatasetError if incomplete."""
    from ..errors import DatasetError

    root = Path(root)
    if not (root / COMPLETE_MARKER).is_file() or not (root / MANIFEST).is_file():
        raise DatasetError(
            f"{root}: no complete demo data ({COMPLETE_MARKER} or {MANIFEST} missing); "
            f"generate it with `python tools/make_demo_data.py --out {root}`."
        )
    return json.loads((root / MANIFEST).read_text())
