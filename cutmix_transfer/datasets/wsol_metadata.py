"""Reader and writer for clovaai/wsolevaluation's metadata format (metadata/<DATASET>/<split>/):

    image_ids.txt     <image_id>                      one per line; the sample order
    class_labels.txt  <image_id>,<label>              0-based
    image_sizes.txt   <image_id>,<w>,<h>
    localization.txt  <image_id>,<x0>,<y0>,<x1>,<y1>  one line per box; an image may have several

Image ids are paths relative to the data root (CUB: '001.Black_footed_Albatross/X.jpg' under
CUB_200_2011/images; ImageNet: 'val/ILSVRC2012_val_00000001.JPEG' under ILSVRC/Data/CLS-LOC).
Boxes are read and written as given (x0 y0 x1 y1 pixel coordinates; wsolevaluation writes integers).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..io import atomic_write_text
from .common import WSOLSample, check_boxes, iter_lines, malformed, parse_number, require_dir

logger = logging.getLogger(__name__)

LAYOUT = (
    "wsolevaluation metadata (image_ids.txt, class_labels.txt, image_sizes.txt, localization.txt "
    "in one folder such as metadata/CUB/test)"
)
FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")


def _keyed(
    path: Path, nfields: int, expected: str, ids: dict[str, int], numeric: str, multi: bool = False
) -> dict[str, list[tuple[int, list[float]]]]:
    """Parse '<image_id>,<v>,...' lines into image_id -> [(line number, values)]; ids must be known."""
    out: dict[str, list[tuple[int, list[float]]]] = {}
    for lineno, line in iter_lines(path, LAYOUT):
        parts = line.split(",")
        if len(parts) != nfields:
            why = f"{len(parts)} comma-separated fields, not {nfields}"
            if path.name == "localization.txt" and len(parts) == 3:
                why += " (this is the OpenImages mask form <id>,<mask>,<ignore>; only the box form is supported)"
            raise malformed(path, lineno, line, expected, why)
        image_id = parts[0]
        if image_id not in ids:
            raise malformed(path, lineno, line, expected, f"image id {image_id!r} is not in image_ids.txt")
        values = [parse_number(p, path, lineno, line, expected, integer=numeric == "int") for p in parts[1:]]
        if image_id in out and not multi:
            raise malformed(path, lineno, line, expected, f"{image_id} already on line {out[image_id][0][0]}")
        out.setdefault(image_id, []).append((lineno, values))
    return out


def load_wsol_metadata(metadata_dir: str | Path, data_root: str | Path, check_images: bool = True) -> list[WSOLSample]:
    """Samples in image_ids.txt order; `path` = data_root / image_id. Every listed image needs a label, a
    size and at least one box. `check_images` verifies that each image file exists under `data_root`."""
    metadata_dir = require_dir(Path(metadata_dir), LAYOUT)
    data_root = Path(data_root)
    ids_path = metadata_dir / "image_ids.txt"
    ids: dict[str, int] = {}
    order: list[str] = []
    for lineno, line in iter_lines(ids_path, LAYOUT):
        if "," in line:
            raise malformed(
                ids_path,
                lineno,
                line,
                "'<image_id>' (a relative image path) per line",
                "a comma: image_ids.txt holds only the id",
            )
        if line in ids:
            raise malformed(ids_path, lineno, line, "one '<image_id>' per line", f"already on line {ids[line]}")
        ids[line] = lineno
        order.append(line)
    if not order:
        raise DatasetError(f"{ids_path}: no image ids; it must list one image path per line.")
    labels = _keyed(metadata_dir / "class_labels.txt", 2, "'<image_id>,<class_label>'", ids, "int")
    sizes = _keyed(metadata_dir / "image_sizes.txt", 3, "'<image_id>,<width>,<height>'", ids, "int")
    boxes = _keyed(metadata_dir / "localization.txt", 5, "'<image_id>,<x0>,<y0>,<x1>,<y1>'", ids, "float", multi=True)

    if check_images:
        require_dir(data_root, f"image folder of {metadata_dir} (image ids are paths relative to it)")
    samples = []
    for image_id in order:
        for name, table in (("class_labels.txt", labels), ("image_sizes.txt", sizes), ("localization.txt", boxes)):
            if image_id not in table:
                raise DatasetError(
                    f"{metadata_dir / name}: no line for {image_id} (image_ids.txt:{ids[image_id]}); "
                    f"every listed image needs one. Regenerate the metadata."
                )
        label = int(labels[image_id][0][1][0])
        if label < 0:
            lineno = labels[image_id][0][0]
            raise malformed(
                metadata_dir / "class_labels.txt",
                lineno,
                f"{image_id},{label}",
                "'<image_id>,<class_label>' with a 0-based label",
                "negative label",
            )
        w, h = (int(v) for v in sizes[image_id][0][1])
        path = data_root / image_id
        if check_images and not path.is_file():
            raise DatasetError(
                f"image not found: {path} (image_ids.txt:{ids[image_id]} {image_id}); the ids are "
                f"relative to the data root: pass the folder that holds them with --data-root "
                f"(CUB: CUB_200_2011/images, ImageNet: ILSVRC/Data/CLS-LOC)."
            )
        box_arr = check_boxes(
            np.array([v for _, v in boxes[image_id]]), f"{metadata_dir / 'localization.txt'}:{boxes[image_id][0][0]}"
        )
        samples.append(
            WSOLSample(image_id=image_id, path=path, label=label, boxes_xyxy=box_arr, size_wh=(w, h), mask_path=None)
        )
    logger.info("wsolevaluation metadata %s: %d images (data root %s)", metadata_dir, len(samples), data_root)
    return samples


def _fmt(v: float) -> str:
    r = round(float(v))
    if abs(float(v) - r) > 1e-6:
        logger.debug("box coordinate %s rounded to %d (wsolevaluation's format is integers)", v, r)
    return str(int(r))


def write_wsol_metadata(samples: Iterable[WSOLSample], out_dir: str | os.PathLike) -> Path:
    """Write the four metadata files for `samples` into `out_dir` (atomically, one file at a time).

    Box coordinates are rounded to integers, as wsolevaluation's reader parses them with int().
    """
    out_dir = Path(out_dir)
    samples = list(samples)
    seen = set()
    for s in samples:
        if "," in s.image_id or "\n" in s.image_id:
            raise DatasetError(
                f"image id {s.image_id!r} contains a comma or newline; the metadata format cannot hold it."
            )
        if s.image_id in seen:
            raise DatasetError(f"image id {s.image_id!r} appears twice among the samples.")
        if len(s.boxes_xyxy) == 0:
            raise DatasetError(f"image {s.image_id!r} has no box; localization.txt needs at least one per image.")
        seen.add(s.image_id)
    atomic_write_text(out_dir / "image_ids.txt", "".join(f"{s.image_id}\n" for s in samples))
    atomic_write_text(out_dir / "class_labels.txt", "".join(f"{s.image_id},{int(s.label)}\n" for s in samples))
    atomic_write_text(
        out_dir / "image_sizes.txt", "".join(f"{s.image_id},{int(s.size_wh[0])},{int(s.size_wh[1])}\n" for s in samples)
    )
    atomic_write_text(
        out_dir / "localization.txt",
        "".join(
            f"{s.image_id},{','.join(_fmt(v) for v in box)}\n"
            for s in samples
            for box in np.asarray(s.boxes_xyxy).reshape(-1, 4)
        ),
    )
    logger.info("wrote wsolevaluation metadata for %d images to %s", len(samples), out_dir)
    return out_dir
