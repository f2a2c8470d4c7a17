"""What every dataset reader shares: WSOLSample, line-file parsing with file:line errors, image sizes, the RGB
image loader, the evaluators' unreadable-image rule (`check_unreadable`) and the ImageNet normalisation every
pipeline uses.

Readers raise `DatasetError` for anything a user can get wrong on disk: the message names the path, what was
found, and how to fix it (usually: point --data-root at the folder with the expected layout).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError

logger = logging.getLogger(__name__)

# ImageNet RGB mean / std of images scaled to [0, 1]: the normalisation of every torchvision-style backbone.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# CIFAR-100 RGB mean / std of images scaled to [0, 1] as CutMix-PyTorch's train.py normalises them (also ODIN's):
# (125.3, 123.0, 113.9) / 255 and (63.0, 62.1, 66.7) / 255. Not the per-channel statistics of the CIFAR-100 train set.
CIFAR100_CUTMIX_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR100_CUTMIX_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)
# what the error of an unreadable image tells the user to do (WSOL and robustness evaluators; OOD words its own)
UNREADABLE_FIX = "replace the file, or pass --skip-unreadable to count it as skipped (reported in results.json)"


@dataclass
class WSOLSample:
    """One image for weakly-supervised localization.

    `boxes_xyxy` is (K, 4) float32 in original pixel coordinates, x0 y0 x1 y1, as the dataset's reference
    tooling reads them (see each reader); `size_wh` is (width, height); `mask_path` points to a binary mask
    (foreground > 127) when the dataset has one.
    """

    image_id: str
    path: Path
    label: int
    boxes_xyxy: np.ndarray
    size_wh: tuple[int, int]
    mask_path: Path | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WSOLSample):
            return NotImplemented
        return (
            self.image_id == other.image_id
            and Path(self.path) == Path(other.path)
            and self.label == other.label
            and tuple(self.size_wh) == tuple(other.size_wh)
            and self.mask_path == other.mask_path
            and self.boxes_xyxy.shape == other.boxes_xyxy.shape
            and bool(np.array_equal(self.boxes_xyxy, other.boxes_xyxy))
        )


# What a missing folder / file of a layout says (formatted with the path and the layout's name).
_MISSING = {
    "dir": "dataset folder not found: {path}. Expected the {layout} layout there; "
    "pass the folder that holds it with --data-root (see data/README.md).",
    "file": "missing file: {path}. The {layout} layout needs it; check that --data-root "
    "points at the right folder and that the download was extracted completely "
    "(see data/README.md).",
}


def _require(path: Path, layout: str, kind: str) -> Path:
    """Return `path` if it is a folder (kind 'dir') or a file ('file'), else raise DatasetError naming it."""
    path = Path(path)
    if not (path.is_dir() if kind == "dir" else path.is_file()):
        raise DatasetError(_MISSING[kind].format(path=path, layout=layout))
    return path


def require_dir(path: Path, layout: str) -> Path:
    """Return `path` if it is a folder, else raise DatasetError naming it and the expected layout."""
    return _require(path, layout, "dir")


def require_file(path: Path, layout: str) -> Path:
    """Return `path` if it is a file, else raise DatasetError naming it and the expected layout."""
    return _require(path, layout, "file")


def iter_lines(path: Path, layout: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, stripped text) for each non-empty line of a required text file."""
    require_file(path, layout)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(
            f"{path}: not a UTF-8 text file ({e}); the {layout} layout expects plain text "
            f"lines. Replace the file with the original one."
        ) from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line:
            yield lineno, line


def malformed(path: Path, lineno: int, line: str, expected: str, why: str = "") -> DatasetError:
    """A DatasetError for one bad line: file:line, the line's text, what was expected."""
    reason = f" ({why})" if why else ""
    return DatasetError(
        f"{path}:{lineno}: malformed line {line!r}{reason}; expected {expected}. "
        f"Fix or replace the file with the original one."
    )


def parse_number(token: str, path: Path, lineno: int, line: str, expected: str, integer: bool = False) -> float:
    """Parse one numeric field of a line; a bad value raises DatasetError with file:line."""
    try:
        value = float(token)
    except ValueError:
        raise malformed(path, lineno, line, expected, f"{token!r} is not a number") from None
    if not np.isfinite(value):
        raise malformed(path, lineno, line, expected, f"{token!r} is not finite")
    if integer and value != int(value):
        raise malformed(path, lineno, line, expected, f"{token!r} is not an integer")
    return int(value) if integer else value


def image_size_wh(path: Path) -> tuple[int, int]:
    """(width, height) of an image from its header only (PIL opens lazily, no full decode)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image not found: {path}. Check --data-root and that the images were extracted.")
    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (UnidentifiedImageError, OSError) as e:
        raise DatasetError(f"unreadable image: {path} ({e}). Replace it with the original file.") from None


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """The image at `path` decoded as RGB; DatasetError naming the file when it cannot be read."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read image {path}: {e}. Re-extract or delete the file.") from e


def check_boxes(boxes: np.ndarray, where: str) -> np.ndarray:
    """Validate (K, 4) x0 y0 x1 y1 boxes (x1 >= x0, y1 >= y0); return them as float32."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        raise DatasetError(
            f"{where}: box {boxes[bad][0].tolist()} has x1 < x0 or y1 < y0; boxes must be "
            f"x0 y0 x1 y1. Fix the annotation."
        )
    return boxes


def check_unreadable(
    errors: Sequence[str],
    describe: Callable[[int], dict[str, Any]],
    skip: bool,
    skipped: list[dict[str, Any]],
    fix: str = UNREADABLE_FIX,
    log: logging.Logger = logger,
) -> np.ndarray:
    """Which images of a batch decoded (bool per position; `errors` holds "" for a readable one): the first unreadable
    one raises DatasetError "<error>; <fix>" unless `skip`, else each is logged on `log` and listed in `skipped` as
    describe(position) plus its error, so every evaluator applies --skip-unreadable the same way."""
    ok = np.array([not e for e in errors], dtype=bool)
    for j in np.flatnonzero(~ok).tolist():
        err = errors[j]
        if not skip:
            raise DatasetError(f"{err}; {fix}")
        log.warning("skipping %s", err)
        skipped.append({**describe(j), "error": err})
    return ok
