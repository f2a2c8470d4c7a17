"""Reader for ImageNet (ILSVRC 2012) validation in the Kaggle ILSVRC layout: boxes from per-image XML or from
LOC_val_solution.csv, class order from LOC_synset_mapping.txt.

Boxes are returned exactly as the annotations hold them (x0 y0 x1 y1, 0-based pixel indices, the real
ones reach width - 1 at most), which is how wsolevaluation's ILSVRC metadata carries them. An image can hold
several boxes; all belong to its class.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from ..errors import ConfigError, DatasetError
from .common import WSOLSample, check_boxes, image_size_wh, iter_lines, malformed, parse_number, require_dir

logger = logging.getLogger(__name__)

LAYOUT = (
    "ILSVRC (Kaggle layout: Data/CLS-LOC/val/ILSVRC2012_val_NNNNNNNN.JPEG, Annotations/CLS-LOC/val/*.xml "
    "or LOC_val_solution.csv, LOC_synset_mapping.txt)"
)


def resolve_imagenet_root(root: str | Path) -> Path:
    """The ILSVRC folder: `root` itself, or `root/ILSVRC` when `root` is its parent."""
    root = Path(root)
    if not (root / "Data").is_dir() and (root / "ILSVRC" / "Data").is_dir():
        root = root / "ILSVRC"
    return require_dir(root, LAYOUT)


def _top_file(root: Path, name: str) -> Path:
    """`root/name`, or `root/../name`, where Kaggle's archive puts the LOC_* files (next to ILSVRC/)."""
    if not (root / name).is_file() and (root.parent / name).is_file():
        return root.parent / name
    return root / name


def load_synsets(path: str | Path) -> list[tuple[str, str]]:
    """(wnid, description) per line of LOC_synset_mapping.txt ('n01440764 tench, Tinca tinca').

    The class index is the line order.
    """
    path = Path(path)
    expected = "'<wnid> <description>' such as 'n01440764 tench, Tinca tinca'"
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for lineno, line in iter_lines(path, LAYOUT):
        wnid, _, desc = line.partition(" ")
        if not (len(wnid) == 9 and wnid[0] == "n" and wnid[1:].isdigit()):
            raise malformed(path, lineno, line, expected, f"{wnid!r} is not a WordNet id n + 8 digits")
        if wnid in seen:
            raise malformed(path, lineno, line, expected, f"{wnid} already on line {seen[wnid]}")
        seen[wnid] = lineno
        out.append((wnid, desc.strip()))
    if not out:
        raise DatasetError(f"{path}: empty; it must list the synsets, one per line, in class-index order.")
    return out


def _xml_int(el: ET.Element | None, tag: str, path: Path) -> float:
    node = el.find(tag) if el is not None else None
    if node is None or node.text is None:
        raise DatasetError(
            f"{path}: missing <{tag}> in <{el.tag if el is not None else '?'}>; expected a "
            f"PASCAL-style annotation. Replace the file with the original one."
        )
    try:
        value = float(node.text.strip())
    except ValueError:
        raise DatasetError(f"{path}: <{tag}>{node.text}</{tag}> is not a number. Fix the annotation.") from None
    return value


def parse_pascal_xml(path: str | Path) -> tuple[tuple[int, int], list[tuple[str, list[float], int]]]:
    """Read a PASCAL-style XML: ((width, height), [(name, [xmin, ymin, xmax, ymax], difficult), ...])."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        line, col = e.position
        raise DatasetError(
            f"{path}:{line}: XML parse error at column {col} ({e}). Replace the file with the original one."
        ) from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e}).") from None
    size = root.find("size")
    if size is None:
        raise DatasetError(
            f"{path}: no <size> element; expected a PASCAL-style annotation with <size><width>"
            f"<height>. Replace the file with the original one."
        )
    wh = (int(_xml_int(size, "width", path)), int(_xml_int(size, "height", path)))
    objects = []
    for obj in root.findall("object"):
        name_el = obj.find("name")
        if name_el is None or not (name_el.text or "").strip():
            raise DatasetError(f"{path}: an <object> without <name>. Fix the annotation.")
        bb = obj.find("bndbox")
        if bb is None:
            raise DatasetError(f"{path}: <object> {name_el.text.strip()} has no <bndbox>. Fix the annotation.")
        box = [_xml_int(bb, t, path) for t in ("xmin", "ymin", "xmax", "ymax")]
        diff_el = obj.find("difficult")
        diff = int(float(diff_el.text)) if diff_el is not None and (diff_el.text or "").strip() else 0
        objects.append((name_el.text.strip(), box, diff))
    return wh, objects


def _from_xml(ann_dir: Path, wnid_index: dict[str, int]) -> dict[str, tuple[int, list[list[float]], tuple[int, int]]]:
    files = sorted(ann_dir.glob("*.xml"))
    if not files:
        raise DatasetError(
            f"{ann_dir}: no *.xml annotations; expected one per validation image "
            f"(or use LOC_val_solution.csv with source='csv')."
        )
    out = {}
    for f in tqdm(files, desc="ImageNet val XML", disable=len(files) < 2000):
        wh, objects = parse_pascal_xml(f)
        if not objects:
            raise DatasetError(f"{f}: no <object>; every ImageNet validation image has at least one box.")
        names = [o[0] for o in objects]
        for n in names:
            if n not in wnid_index:
                raise DatasetError(
                    f"{f}: synset {n} is not in LOC_synset_mapping.txt; the annotation and the "
                    f"synset list do not belong together."
                )
        if len(set(names)) > 1:
            logger.warning(
                "%s: objects of several synsets %s; using %s (the first) as the label and its boxes",
                f,
                sorted(set(names)),
                names[0],
            )
        boxes = [o[1] for o in objects if o[0] == names[0]]
        out[f.stem] = (wnid_index[names[0]], boxes, wh)
    return out


def _from_csv(csv_path: Path, wnid_index: dict[str, int]) -> dict[str, tuple[int, list[list[float]], None]]:
    expected = "'<ImageId>,<wnid> <x0> <y0> <x1> <y1> [<wnid> <x0> <y0> <x1> <y1> ...]'"
    out: dict[str, tuple[int, list[list[float]], None]] = {}
    first = True
    for lineno, line in iter_lines(csv_path, LAYOUT):
        if first:
            first = False
            if line.replace(" ", "").lower() == "imageid,predictionstring":
                continue
        parts = line.split(",")
        if len(parts) != 2 or not parts[0].strip():
            raise malformed(csv_path, lineno, line, expected, f"{len(parts)} comma-separated fields, not 2")
        image_id, tokens = parts[0].strip(), parts[1].split()
        if not tokens or len(tokens) % 5:
            raise malformed(csv_path, lineno, line, expected, f"{len(tokens)} prediction tokens, not a multiple of 5")
        labels, boxes = [], []
        for k in range(0, len(tokens), 5):
            wnid = tokens[k]
            if wnid not in wnid_index:
                raise malformed(csv_path, lineno, line, expected, f"synset {wnid} is not in LOC_synset_mapping.txt")
            labels.append(wnid_index[wnid])
            boxes.append([parse_number(t, csv_path, lineno, line, expected) for t in tokens[k + 1 : k + 5]])
        if image_id in out:
            raise malformed(csv_path, lineno, line, expected, f"{image_id} listed twice")
        if len(set(labels)) > 1:
            logger.warning(
                "%s:%d: %s has boxes of several synsets; using the first as the label", csv_path, lineno, image_id
            )
        out[image_id] = (labels[0], [b for b, lab in zip(boxes, labels) if lab == labels[0]], None)
    if not out:
        raise DatasetError(f"{csv_path}: no rows after the header; expected {expected}.")
    return out


def load_imagenet_val(
    root: str | Path, source: Literal["auto", "xml", "csv"] = "auto", check_images: bool = True
) -> list[WSOLSample]:
    """ImageNet validation samples sorted by image id ('val/ILSVRC2012_val_00000001.JPEG', relative to
    Data/CLS-LOC as in wsolevaluation's metadata). Labels = line index in LOC_synset_mapping.txt.

    `source`: 'xml' reads Annotations/CLS-LOC/val/*.xml, 'csv' reads LOC_val_solution.csv, 'auto' prefers
    the XML folder when it exists. Sizes come from the XML <size>, or from the image header for the CSV.
    """
    if source not in ("auto", "xml", "csv"):
        raise ConfigError(f"source={source!r}: choose 'auto', 'xml' or 'csv'.")
    root = resolve_imagenet_root(root)
    synsets = load_synsets(_top_file(root, "LOC_synset_mapping.txt"))
    wnid_index = {w: i for i, (w, _) in enumerate(synsets)}
    image_dir = require_dir(root / "Data" / "CLS-LOC" / "val", LAYOUT)
    ann_dir = root / "Annotations" / "CLS-LOC" / "val"
    csv_path = _top_file(root, "LOC_val_solution.csv")
    if source == "auto":
        source = "xml" if ann_dir.is_dir() else "csv"
    if source == "xml":
        require_dir(ann_dir, LAYOUT)
        table = _from_xml(ann_dir, wnid_index)
    else:
        table = _from_csv(csv_path, wnid_index)

    samples = []
    for stem in sorted(table):
        label, boxes, wh = table[stem]
        path = image_dir / f"{stem}.JPEG"
        if not path.is_file():
            raise DatasetError(
                f"image not found: {path} (annotated in {ann_dir if source == 'xml' else csv_path}); "
                f"check --data-root and that Data/CLS-LOC/val was extracted completely."
            )
        if wh is None:
            wh = image_size_wh(path) if check_images else (0, 0)
        where = str(ann_dir / f"{stem}.xml") if source == "xml" else f"{csv_path} ({stem})"
        samples.append(
            WSOLSample(
                image_id=f"val/{stem}.JPEG",
                path=path,
                label=label,
                boxes_xyxy=check_boxes(np.array(boxes), where),
                size_wh=wh,
                mask_path=None,
            )
        )
    logger.info("ImageNet val: %d images, %d classes, boxes from %s (%s)", len(samples), len(synsets), source, root)
    return samples
