"""File helpers shared by the layout writers: image encoding, plain file writes, PASCAL-style annotation XML.

Images are written in place (not atomically): a generator run counts only once `.demo_complete` exists, and a rerun
without it starts from an empty layout folder (see `make_demo_data`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

JPEG_QUALITY = 95


def encode_image(img_rgb: np.ndarray, ext: str) -> bytes:
    """Bytes of an RGB (H, W, 3) or grey (H, W) uint8 image in the format of `ext` (JPEG at JPEG_QUALITY)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg", ".JPEG") else []
    arr = img_rgb[..., ::-1] if img_rgb.ndim == 3 else img_rgb
    ok, buf = cv2.imencode(ext.lower(), np.ascontiguousarray(arr), params)
    if not ok:
        raise RuntimeError(f"cv2.imencode failed for {ext}")
    return buf.tobytes()


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path`, creating its folders."""
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


def pascal_xml(
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
