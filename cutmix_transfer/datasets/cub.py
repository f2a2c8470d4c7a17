"""Reader for CUB-200-2011 in its raw layout (images.txt, bounding_boxes.txt, ...), with optional masks.

Boxes: bounding_boxes.txt holds `<id> <x> <y> <w> <h>` (floats); like wsolevaluation's CUB metadata they
become x0, y0, x0 + w, y0 + h. Masks come from `segmentations/<class>/<file>.png` (the separate CUB
segmentation download), looked for inside the CUB_200_2011 folder and next to it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from ..errors import ConfigError, DatasetError
from .common import WSOLSample, check_boxes, image_size_wh, iter_lines, malformed, parse_number, require_dir

logger = logging.getLogger(__name__)

LAYOUT = (
    "CUB_200_2011 (images.txt, classes.txt, image_class_labels.txt, train_test_split.txt, "
    "bounding_boxes.txt, images/<NNN.Class>/<file>.jpg)"
)
REQUIRED = ("images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt")


def resolve_cub_root(root: str | Path) -> Path:
    """The CUB_200_2011 folder: `root` itself, or `root/CUB_200_2011` when `root` is its parent."""
    root = Path(root)
    if not (root / "images.txt").is_file() and (root / "CUB_200_2011" / "images.txt").is_file():
        root = root / "CUB_200_2011"
    return require_dir(root, LAYOUT)


def _id_table(path: Path, fields: int, expected: str) -> dict[int, tuple[int, list[str]]]:
    """Map image id -> (line number, other fields) of a '<id> ...' file; rejects bad and duplicate ids."""
    table: dict[int, tuple[int, list[str]]] = {}
    for lineno, line in iter_lines(path, LAYOUT):
        parts = line.split()
        if len(parts) != fields:
            raise malformed(path, lineno, line, expected, f"{len(parts)} fields, not {fields}")
        key = parse_number(parts[0], path, lineno, line, expected, integer=True)
        if key in table:
            raise malformed(path, lineno, line, expected, f"image id {key} already on line {table[key][0]}")
        table[key] = (lineno, parts[1:])
    return table


def load_cub_classes(root: str | Path) -> list[str]:
    """Class folder names in label order ('001.Black_footed_Albatross', ...) from classes.txt."""
    root = resolve_cub_root(root)
    path = root / "classes.txt"
    expected = "'<class_id> <NNN.Name>' with class ids 1, 2, 3, ... in order"
    names = []
    for lineno, line in iter_lines(path, LAYOUT):
        parts = line.split()
        if len(parts) != 2:
            raise malformed(path, lineno, line, expected, f"{len(parts)} fields, not 2")
        cid = parse_number(parts[0], path, lineno, line, expected, integer=True)
        if cid != len(names) + 1:
            raise malformed(path, lineno, line, expected, f"class id {cid} where {len(names) + 1} was expected")
        names.append(parts[1])
    if not names:
        raise DatasetError(f"{path}: no classes listed; the {LAYOUT} layout needs one '<id> <name>' per line.")
    return names


def _find_segmentations(root: Path) -> Path | None:
    for cand in (root / "segmentations", root.parent / "segmentations"):
        if cand.is_dir():
            return cand
    return None


def load_cub(
    root: str | Path, split: Literal["train", "test"], with_masks: bool | None = None, check_images: bool = True
) -> list[WSOLSample]:
    """Samples of one CUB split, in images.txt order. Labels 0-based (class id - 1); boxes (1, 4) xyxy.

    `with_masks`: None uses segmentations/ when it exists, True requires it, False ignores it.
    Image sizes come from each JPEG's header (`check_images=False` skips reading them: size (0, 0)).
    """
    if split not in ("train", "test"):
        raise ConfigError(f"split={split!r}: CUB has 'train' and 'test' (train_test_split.txt: 1 = train).")
    root = resolve_cub_root(root)
    classes = load_cub_classes(root)
    images = _id_table(root / "images.txt", 2, "'<image_id> <NNN.Class>/<file>.jpg'")
    labels = _id_table(root / "image_class_labels.txt", 2, "'<image_id> <class_id>'")
    splits = _id_table(root / "train_test_split.txt", 2, "'<image_id> <1 train | 0 test>'")
    boxes = _id_table(root / "bounding_boxes.txt", 5, "'<image_id> <x> <y> <width> <height>'")
    image_dir = require_dir(root / "images", LAYOUT)

    seg_dir = None
    if with_masks is not False:
        seg_dir = _find_segmentations(root)
        if seg_dir is None and with_masks:
            raise DatasetError(
                f"no segmentations/ folder in {root} or next to it; masks (PxAP) need the CUB "
                f"segmentation download extracted there as segmentations/<NNN.Class>/<file>.png."
            )

    want = 1 if split == "train" else 0
    samples = []
    for image_id, (img_line, (rel,)) in tqdm(sorted(images.items()), desc=f"CUB {split}", disable=len(images) < 2000):
        for name, table in (
            ("image_class_labels.txt", labels),
            ("train_test_split.txt", splits),
            ("bounding_boxes.txt", boxes),
        ):
            if image_id not in table:
                raise DatasetError(
                    f"{root / name}: no line for image id {image_id} (images.txt:{img_line} "
                    f"{rel}); the files of {root} do not belong together. Re-extract CUB_200_2011."
                )
        s_line, (flag,) = splits[image_id]
        path = root / "train_test_split.txt"
        is_train = parse_number(flag, path, s_line, f"{image_id} {flag}", "'<image_id> <1|0>'", integer=True)
        if is_train not in (0, 1):
            raise malformed(
                path,
                s_line,
                f"{image_id} {flag}",
                "'<image_id> <1 train | 0 test>'",
                f"flag {is_train} is neither 1 nor 0",
            )
        if is_train != want:
            continue
        l_line, (cls,) = labels[image_id]
        path = root / "image_class_labels.txt"
        cid = parse_number(cls, path, l_line, f"{image_id} {cls}", "'<image_id> <class_id>'", integer=True)
        if not 1 <= cid <= len(classes):
            raise malformed(
                path,
                l_line,
                f"{image_id} {cls}",
                "'<image_id> <class_id>'",
                f"class id {cid} outside 1..{len(classes)} of classes.txt",
            )
        b_line, vals = boxes[image_id]
        path = root / "bounding_boxes.txt"
        text = " ".join([str(image_id), *vals])
        x, y, w, h = (parse_number(v, path, b_line, text, "'<image_id> <x> <y> <width> <height>'") for v in vals)
        if w < 0 or h < 0:
            raise malformed(path, b_line, text, "'<image_id> <x> <y> <width> <height>'", "negative width or height")
        box = check_boxes(np.array([[x, y, x + w, y + h]]), f"{path}:{b_line}")
        img_path = image_dir / rel
        if check_images:
            size = image_size_wh(img_path)
        else:
            size = (0, 0)
        mask_path = None
        if seg_dir is not None:
            mask_path = seg_dir / (str(Path(rel).with_suffix("")) + ".png")
            if not mask_path.is_file():
                raise DatasetError(
                    f"mask not found: {mask_path} (for images.txt:{img_line} {rel}); "
                    f"{seg_dir} looks incomplete. Re-extract the CUB segmentations or pass "
                    f"with_masks=False."
                )
        samples.append(
            WSOLSample(image_id=rel, path=img_path, label=cid - 1, boxes_xyxy=box, size_wh=size, mask_path=mask_path)
        )
    if not samples:
        raise DatasetError(f"{root / 'train_test_split.txt'}: no image is in the {split!r} split.")
    logger.info(
        "CUB %s: %d images, %d classes%s from %s",
        split,
        len(samples),
        len(classes),
        ", with masks" if seg_dir is not None else "",
        root,
    )
    return samples
