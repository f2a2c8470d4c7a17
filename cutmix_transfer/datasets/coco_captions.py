"""MS-COCO captions reader: Karpathy's split file (dataset_coco.json) or the COCO 2014 captions json files.

Layout under `root` (the folder usually called coco/):
    annotations/captions_train2014.json, annotations/captions_val2014.json   (COCO 2014 captions)
    train2014/COCO_train2014_*.jpg, val2014/COCO_val2014_*.jpg
    dataset_coco.json                                                         (Karpathy & Fei-Fei 2015 split)
Karpathy split (the one the captioning literature and the CutMix paper report on): 'train' = train + restval
(113,287 images), 'val' 5,000, 'test' 5,000, all with 5+ captions. From the COCO json files alone the splits are
the official 'train' (train2014) and 'val' (val2014); the Karpathy test split needs dataset_coco.json.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import ConfigError, DatasetError
from .text import tokenize

logger = logging.getLogger(__name__)

Source = Literal["auto", "karpathy", "coco"]
SOURCES = ("auto", "karpathy", "coco")
KARPATHY_SPLITS = {
    "train": ("train", "restval"),
    "val": ("val",),
    "test": ("test",),
    "restval": ("restval",),
    "train_only": ("train",),
}
COCO_SPLITS = ("train", "val")
KARPATHY_FILE = "dataset_coco.json"


@dataclass
class CaptionImage:
    """One image with its reference captions.

    `image_id` is the COCO image id (cocoid); `captions` the raw sentences as annotated (the references scored by
    the COCO tools after PTB tokenisation); `tokens` one lower-case token list per caption (for the vocabulary and
    the training targets).
    """

    image_id: int
    path: Path
    captions: list[str]
    tokens: list[list[str]] = field(default_factory=list)
    split: str = ""


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise DatasetError(
            f"missing file: {path}. The COCO captions layout needs {what} there; point --data-root "
            f"(or the config's data_root) at the folder holding annotations/, train2014/, val2014/ "
            f"and dataset_coco.json (see data/README.md)."
        )
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(
            f"{path} is not valid JSON ({type(e).__name__}: {e}); re-download or regenerate "
            f"it (tools/make_demo_data.py for the demo)."
        ) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("images"), list):
        raise DatasetError(f"{path} has no 'images' list: it is not {what}.")
    return obj


def _require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise DatasetError(
            f"image folder not found: {path}. The COCO captions layout keeps the images in "
            f"train2014/ and val2014/ under the data root; extract the COCO 2014 zips there."
        )
    return path


def _check_files(items: list[CaptionImage], origin: Path) -> None:
    missing = [it.path for it in items if not it.path.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} of {len(items)} images listed in {origin} are missing, e.g. "
            f"{missing[0]}; the image folders are incomplete (re-extract train2014/ and val2014/)."
        )


def load_karpathy(
    json_path: str | os.PathLike, image_root: str | os.PathLike, split: str, check_files: bool = True
) -> list[CaptionImage]:
    """Images of a Karpathy split from dataset_coco.json; paths are image_root/filepath/filename.

    split: 'train' (train + restval, as the literature trains), 'val', 'test', 'restval' or 'train_only'.
    """
    if split not in KARPATHY_SPLITS:
        raise ConfigError(f"unknown Karpathy split {split!r}: choose one of {', '.join(KARPATHY_SPLITS)}")
    json_path, image_root = Path(json_path), Path(image_root)
    data = _read_json(json_path, "Karpathy's split file dataset_coco.json")
    wanted = KARPATHY_SPLITS[split]
    out = []
    for k, im in enumerate(data["images"]):
        try:
            if im["split"] not in wanted:
                continue
            sents = im["sentences"]
            caps = [str(s["raw"]).strip() for s in sents]
            toks = [[str(t).lower() for t in s["tokens"]] if "tokens" in s else tokenize(s["raw"]) for s in sents]
            path = image_root / im.get("filepath", "") / im["filename"]
            image_id = int(im["cocoid"]) if "cocoid" in im else int(im.get("imgid", k))
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(
                f"{json_path}: image entry {k} is malformed ({type(e).__name__}: {e}); expected "
                f"Karpathy's fields filepath, filename, split, cocoid, sentences[raw, tokens]."
            ) from None
        if not caps:
            raise DatasetError(f"{json_path}: image {path.name} (entry {k}) has no sentences.")
        out.append(CaptionImage(image_id, path, caps, toks, split=im["split"]))
    if not out:
        splits = sorted({str(im.get("split")) for im in data["images"] if isinstance(im, dict)})
        raise DatasetError(f"{json_path} has no images in split {split!r} (it holds: {', '.join(splits)}).")
    for folder in sorted({it.path.parent for it in out}):
        _require_dir(folder)
    if check_files:
        _check_files(out, json_path)
    return out


def load_coco_json(
    annotation: str | os.PathLike, image_dir: str | os.PathLike, split: str = "", check_files: bool = True
) -> list[CaptionImage]:
    """Images of one COCO captions file (captions_{train,val}2014.json) with the images in `image_dir`.

    Images are returned in the file's order; an image without any caption is dropped (with a log line).
    """
    annotation, image_dir = Path(annotation), Path(image_dir)
    data = _read_json(annotation, "a COCO captions file")
    if not isinstance(data.get("annotations"), list):
        raise DatasetError(f"{annotation} has no 'annotations' list: it is not a COCO captions file.")
    _require_dir(image_dir)
    caps: dict[int, list[str]] = {}
    try:
        for a in data["annotations"]:
            caps.setdefault(int(a["image_id"]), []).append(str(a["caption"]).strip())
        images = [(int(im["id"]), str(im["file_name"])) for im in data["images"]]
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(
            f"{annotation} is malformed ({type(e).__name__}: {e}); expected COCO's images[id, "
            f"file_name] and annotations[image_id, caption]."
        ) from None
    out = [
        CaptionImage(i, image_dir / f, caps[i], [tokenize(c) for c in caps[i]], split=split)
        for i, f in images
        if i in caps
    ]
    if len(out) < len(images):
        logger.info("%s: %d images without captions skipped", annotation, len(images) - len(out))
    if not out:
        raise DatasetError(f"{annotation} has no captioned images.")
    if check_files:
        _check_files(out, annotation)
    return out


def resolve_source(root: str | os.PathLike, source: Source = "auto") -> str:
    """'karpathy' when root/dataset_coco.json exists (for 'auto'), else 'coco'."""
    if source not in SOURCES:
        raise ConfigError(f"unknown caption source {source!r}: choose one of {', '.join(SOURCES)}")
    if source != "auto":
        return source
    return "karpathy" if (Path(root) / KARPATHY_FILE).is_file() else "coco"


def load_coco_captions(
    root: str | os.PathLike,
    split: str,
    source: Source = "auto",
    karpathy_json: str | os.PathLike | None = None,
    check_files: bool = True,
) -> list[CaptionImage]:
    """Images + reference captions of `split` under a COCO root (see the module docstring for the layout).

    source='karpathy' reads `karpathy_json` (default root/dataset_coco.json); 'coco' reads
    root/annotations/captions_{split}2014.json with images in root/{split}2014 (split 'train' or 'val');
    'auto' picks Karpathy's file when present.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder not found: {root}. Expected the COCO captions layout there "
            f"(annotations/, train2014/, val2014/, dataset_coco.json); see data/README.md."
        )
    if karpathy_json is not None and source == "auto":
        source = "karpathy"
    src = resolve_source(root, source)
    if src == "karpathy":
        return load_karpathy(karpathy_json or root / KARPATHY_FILE, root, split, check_files)
    if split not in COCO_SPLITS:
        raise DatasetError(
            f"split {split!r} needs Karpathy's split file, but {root / KARPATHY_FILE} is missing; "
            f"the COCO json files give only {' and '.join(COCO_SPLITS)}. Put dataset_coco.json "
            f"(from Karpathy's caption_datasets.zip) in {root} or use split 'val'."
        )
    return load_coco_json(
        root / "annotations" / f"captions_{split}2014.json", root / f"{split}2014", split, check_files
    )
