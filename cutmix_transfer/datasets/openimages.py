"""Reader for OpenImages30k in clovaai/wsolevaluation's layout (its third WSOL benchmark, scored by PxAP):

    metadata/OpenImages/<split>/image_ids.txt     test/01226z/7af766bd43da900b.jpg   (the sample order)
    metadata/OpenImages/<split>/class_labels.txt  <image_id>,<label>                 0-based, 100 classes
    metadata/OpenImages/<split>/localization.txt  <image_id>,<mask_path>,<ignore_path>   (val and test only)

localization.txt has one line per instance mask; the ignore file is named on an image's first line only (later
lines of the image leave it empty), as wsolevaluation's ``get_mask_paths`` reads it; an image with no ignore file
(custom data) simply has no ignore region. Images, masks and ignore files are paths relative to the dataset root.
Masks carry no boxes: OpenImages is scored by PxAP only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .common import iter_lines, malformed, parse_number, require_dir

logger = logging.getLogger(__name__)

OPENIMAGES_CLASSES = 100
LAYOUT = (
    "wsolevaluation's OpenImages metadata (image_ids.txt, class_labels.txt, localization.txt in "
    "metadata/OpenImages/<split>/)"
)


@dataclass
class OpenImagesSample:
    """One OpenImages image: its instance masks (union = foreground) and optional ignore region, no boxes.

    `boxes_xyxy` is empty (0, 4) and `size_wh` (0, 0) (the decoded image gives it), so code written for
    WSOLSample reads this sample alike.
    """

    image_id: str
    path: Path
    label: int
    mask_paths: tuple[Path, ...]
    ignore_path: Path | None = None
    boxes_xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    size_wh: tuple[int, int] = (0, 0)
    mask_path: Path | None = None  # the single-mask field of WSOLSample; OpenImages uses mask_paths


def resolve_openimages_metadata(root: str | os.PathLike, split: str, metadata: str | os.PathLike | None) -> Path:
    """The folder holding image_ids.txt for `split`: <metadata>/<split> or <metadata>; without --metadata
    <root>/metadata/OpenImages/<split> (or <root>/metadata/<split>)."""
    root = Path(root)
    bases = [Path(metadata)] if metadata is not None else [root / "metadata" / "OpenImages", root / "metadata"]
    for base in bases:
        for cand in (base / split, base):
            if (cand / "image_ids.txt").is_file():
                return cand
    tried = ", ".join(str(b / split / "image_ids.txt") for b in bases)
    raise DatasetError(
        f"OpenImages metadata not found: no {tried}. Pass --metadata wsolevaluation's "
        f"metadata/OpenImages folder and --data-root the folder its image ids are relative to."
    )


def read_openimages_masks(path: Path, ids: dict[str, int]) -> dict[str, tuple[list[str], str]]:
    """localization.txt -> image_id -> ([mask paths], ignore path or ''), as wsolevaluation's get_mask_paths."""
    expected = "'<image_id>,<mask_path>,<ignore_path>' (ignore path on an image's first line only, may be empty)"
    out: dict[str, tuple[list[str], str]] = {}
    for lineno, line in iter_lines(path, LAYOUT):
        parts = line.split(",")
        if len(parts) != 3:
            raise malformed(path, lineno, line, expected, f"{len(parts)} comma-separated fields, not 3")
        image_id, mask, ignore = (p.strip() for p in parts)
        if image_id not in ids:
            raise malformed(path, lineno, line, expected, f"image id {image_id!r} is not in image_ids.txt")
        if not mask:
            raise malformed(path, lineno, line, expected, "empty mask path")
        if image_id in out:
            if ignore:
                raise malformed(
                    path, lineno, line, expected, f"a second ignore file for {image_id} (only its first line names one)"
                )
            out[image_id][0].append(mask)
        else:
            out[image_id] = ([mask], ignore)
    return out


def load_openimages(
    metadata_dir: str | os.PathLike, data_root: str | os.PathLike, check_images: bool = True
) -> list[OpenImagesSample]:
    """Samples in image_ids.txt order; image, mask and ignore paths are data_root / the listed relative path.
    Every listed image needs a label and at least one mask line; `check_images` verifies the image files exist."""
    meta = require_dir(Path(metadata_dir), LAYOUT)
    root = Path(data_root)
    ids: dict[str, int] = {}
    for lineno, line in iter_lines(meta / "image_ids.txt", LAYOUT):
        if "," in line or line in ids:
            raise malformed(
                meta / "image_ids.txt",
                lineno,
                line,
                "one '<image_id>' per line",
                "a comma" if "," in line else f"already on line {ids[line]}",
            )
        ids[line] = lineno
    labels: dict[str, int] = {}
    label_line: dict[str, int] = {}  # image id -> the class_labels.txt line that gave its label
    for lineno, line in iter_lines(meta / "class_labels.txt", LAYOUT):
        parts = line.split(",")
        expected = "'<image_id>,<class_label>' with a 0-based label"
        if len(parts) != 2 or parts[0] not in ids:
            raise malformed(
                meta / "class_labels.txt",
                lineno,
                line,
                expected,
                "not 2 fields" if len(parts) != 2 else f"image id {parts[0]!r} is not in image_ids.txt",
            )
        label = int(parse_number(parts[1], meta / "class_labels.txt", lineno, line, expected, integer=True))
        if label < 0:
            raise malformed(meta / "class_labels.txt", lineno, line, expected, "negative label")
        if parts[0] in labels:  # a second line would silently replace the first label: refuse it
            raise malformed(
                meta / "class_labels.txt",
                lineno,
                line,
                "one line per image id",
                f"{parts[0]!r} already has a label on line {label_line[parts[0]]}",
            )
        labels[parts[0]] = label
        label_line[parts[0]] = lineno
    loc = meta / "localization.txt"
    if not loc.is_file():
        raise DatasetError(
            f"missing file: {loc}; OpenImages localization is scored on the val and test splits "
            f"(train has no masks): pass --split test or val"
        )
    masks = read_openimages_masks(loc, ids)
    if check_images:
        require_dir(root, f"image folder of {meta} (image ids are paths relative to it)")
    samples = []
    for image_id in ids:
        for name, table in (("class_labels.txt", labels), ("localization.txt", masks)):
            if image_id not in table:
                raise DatasetError(
                    f"{meta / name}: no line for {image_id} (image_ids.txt:{ids[image_id]}); every "
                    f"listed image needs one. Regenerate the metadata."
                )
        path = root / image_id
        if check_images and not path.is_file():
            raise DatasetError(
                f"image not found: {path} (image_ids.txt:{ids[image_id]}); the ids are relative to "
                f"the dataset root: pass the folder that holds them with --data-root"
            )
        mask_list, ignore = masks[image_id]
        samples.append(
            OpenImagesSample(
                image_id=image_id,
                path=path,
                label=labels[image_id],
                mask_paths=tuple(root / m for m in mask_list),
                ignore_path=root / ignore if ignore else None,
            )
        )
    logger.info("OpenImages metadata %s: %d images (data root %s)", meta, len(samples), root)
    return samples
