"""The samples one WSOL evaluation scores: the split of a dataset in its raw layout or in wsolevaluation's metadata,
with the class count and class names the dataset declares (so a checkpoint's head can be checked against them).

CUB raw: CUB_200_2011 (split 'test'; 'train' also allowed); ImageNet raw: the val set (split 'val') from XML boxes or
LOC_val_solution.csv; OpenImages: wsolevaluation's metadata/OpenImages/<split>/ (masks, no boxes; see
datasets/openimages.py); metadata (CUB / ImageNet): ``<metadata>/<split>/`` or ``<metadata>/`` holding image_ids.txt,
class_labels.txt, image_sizes.txt, localization.txt, image paths relative to ``data_root``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DatasetError
from .cub import load_cub, load_cub_classes, resolve_cub_root
from .imagenet import load_imagenet_val, load_synsets, resolve_imagenet_root
from .openimages import OPENIMAGES_CLASSES, load_openimages, resolve_openimages_metadata
from .wsol_metadata import load_wsol_metadata

logger = logging.getLogger(__name__)

DATASETS = ("cub", "imagenet", "openimages")
DEFAULT_DATA_ROOTS = {
    "cub": Path("data/CUB_200_2011"),
    "imagenet": Path("data/ILSVRC"),
    "openimages": Path("data/OpenImages"),
}
NOMINAL_CLASSES = {"cub": 200, "imagenet": 1000, "openimages": OPENIMAGES_CLASSES}
DEFAULT_SPLITS = {"cub": "test", "imagenet": "val", "openimages": "test"}
BOX_DATASETS = ("cub", "imagenet")  # OpenImages has masks only: PxAP, no box metrics


@dataclass
class EvalData:
    """The samples of one split, the class count the dataset declares (None if it declares none), class names."""

    samples: list
    num_classes: int | None
    class_names: list[str] | None
    split: str
    data_root: Path
    source: str  # 'raw' or 'metadata'
    has_boxes: bool = True


def read_class_names(path: str | os.PathLike) -> list[str] | None:
    """Class names in index order from CUB classes.txt ('1 001.Black_footed_Albatross'), ImageNet
    LOC_synset_mapping.txt ('n01440764 tench, Tinca tinca' -> 'tench') or a plain one-name-per-line file;
    None when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    names = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        is_wnid = len(head) == 9 and head[0] == "n" and head[1:].isdigit()
        if rest and (head.isdigit() or is_wnid):
            line = rest.split(",")[0].strip() if is_wnid else rest.strip()
        names.append(line)
    return names or None


def metadata_image_root(root: Path, ids_file: Path) -> Path:
    """The folder wsolevaluation image ids are relative to: `root`, or root/images (CUB_200_2011),
    root/Data/CLS-LOC (ILSVRC) when the first id exists only there."""
    first = next(
        (ln.strip() for ln in ids_file.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()), None
    )
    if first is None or (root / first).is_file():
        return root
    for sub in (Path("images"), Path("Data") / "CLS-LOC"):
        if (root / sub / first).is_file():
            return root / sub
    return root


def _from_metadata(
    dataset: str, root: Path, split: str, metadata: Path, skip_unreadable: bool
) -> tuple[list, list[str] | None, Path]:
    meta_dir = metadata / split if (metadata / split / "image_ids.txt").is_file() else metadata
    if not (meta_dir / "image_ids.txt").is_file():
        raise DatasetError(
            f"wsolevaluation metadata not found: neither {metadata / split / 'image_ids.txt'} nor "
            f"{metadata / 'image_ids.txt'} exists. Pass --metadata the folder holding image_ids.txt, "
            f"class_labels.txt, image_sizes.txt and localization.txt (or its parent with "
            f"{split}/ inside), e.g. wsolevaluation's metadata/{dataset.upper()}."
        )
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder not found: {root}. With --metadata, --data-root must be the folder "
            f"the image ids in {meta_dir / 'image_ids.txt'} are relative to (CUB: "
            f"CUB_200_2011/images, ImageNet: ILSVRC/Data/CLS-LOC), or the dataset folder above it."
        )
    image_root = metadata_image_root(root, meta_dir / "image_ids.txt")
    samples = load_wsol_metadata(meta_dir, image_root, check_images=not skip_unreadable)
    names = None
    for base in (image_root, image_root.parent, image_root.parent.parent):
        for fname in ("classes.txt", "LOC_synset_mapping.txt"):
            names = names or read_class_names(base / fname)
    return samples, names, image_root


def load_eval_data(
    dataset: str,
    data_root: str | os.PathLike | None,
    split: str | None,
    metadata: str | os.PathLike | None = None,
    skip_unreadable: bool = False,
) -> EvalData:
    """Samples of the split to score (see the module docstring), with the declared class count.

    Image files are opened only later, by the evaluation (so an unreadable one can be skipped): a sample whose
    reader gave no size (0, 0) takes the decoded image's size.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    root = Path(data_root) if data_root is not None else DEFAULT_DATA_ROOTS[dataset]
    split = split or DEFAULT_SPLITS[dataset]
    if dataset == "openimages":
        meta_dir = resolve_openimages_metadata(root, split, metadata)
        samples = load_openimages(meta_dir, root, check_images=not skip_unreadable)
        names = read_class_names(meta_dir.parent / "class_names.txt") or read_class_names(root / "class_names.txt")
        num_classes, source = (len(names) if names else None), "metadata"
    elif metadata is not None:
        samples, names, root = _from_metadata(dataset, root, split, Path(metadata), skip_unreadable)
        num_classes, source = (len(names) if names else None), "metadata"
    elif dataset == "cub":
        if split not in ("train", "test"):
            raise ConfigError(
                f"--split {split!r}: CUB in its raw layout has the 'test' (and 'train') split; "
                f"wsolevaluation's CUB 'val' split (CUBV2) needs --metadata"
            )
        root = resolve_cub_root(root)
        samples = load_cub(root, split, check_images=False)
        names = load_cub_classes(root)
        num_classes, source = len(names), "raw"
    else:
        if split != "val":
            raise ConfigError(
                f"--split {split!r}: ImageNet in its raw layout has the 'val' split (the WSOL test "
                f"set); wsolevaluation's 'val' (ImageNetV2) / 'test' splits need --metadata"
            )
        root = resolve_imagenet_root(root)
        samples = load_imagenet_val(root, check_images=False)
        names = [desc.split(",")[0].strip() or wnid for wnid, desc in load_synsets(root / "LOC_synset_mapping.txt")]
        num_classes, source = len(names), "raw"
    if not samples:
        raise DatasetError(
            f"the {dataset} {split!r} split under {root} holds no images; check --data-root, --split and --metadata"
        )
    has_boxes = dataset in BOX_DATASETS
    if has_boxes:
        for s in samples:
            if np.asarray(s.boxes_xyxy).reshape(-1, 4).shape[0] == 0:
                raise DatasetError(
                    f"{s.path}: image {s.image_id!r} has no GT box; every scored image needs at "
                    f"least one (fix the annotation or remove the image from the split)"
                )
    return EvalData(
        samples=samples,
        num_classes=num_classes,
        class_names=names,
        split=split,
        data_root=root,
        source=source,
        has_boxes=has_boxes,
    )
