"""What a classification record measured and how: the `data` and `protocol` blocks that train_cls (its final
validation) and test_cls both write, so that one checkpoint scored by both on the same images under the same
inputs is one report cell (a rerun: the report shows the newest and notes the other; docs/classification_protocol.md).

- data: the dataset by the evaluator's name ('imagenet', 'cifar100', 'cifar10', 'cub'), the split, the folder that
  holds the split (CIFAR: the batch files' folder; CUB: the CUB_200_2011 root; ImageNet: the folder holding
  val/), and the image ids: the CIFAR index, else the path relative to that folder (`relative_image_ids`), so the
  same images give the same identity whichever parent folder a config or a command line named.
- protocol: the input (`preprocess_fields`: input side, resize, crop), the normalisation statistics, and the
  metric definitions of the classification kind (top-k as torch.topk; ECE and RMS bins). Where the statistics
  came from (command line, checkpoint meta, dataset default), the reader's layout and the tool are provenance:
  they go in the record beside the block, not in it, since they change no number.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .calibration import ECE_BINS, RMS_BIN_SIZE

CIFAR_SIDE = 32  # CIFAR's images: a 32 px resize_test is a no-op
# train_cls's registered reader types -> the dataset name test_cls uses (ImageFolderCls: the ImageNet layout)
READER_DATASETS = {"ImageFolderCls": "imagenet", "CUBCls": "cub"}


def relative_image_ids(paths: Sequence[Any], root: str | os.PathLike) -> list[str]:
    """Image ids of files: each path relative to the data root `root` (posix text) where it lies below it, else as
    given; the same images give the same ids wherever the dataset is mounted."""
    base = Path(root).resolve()
    out = []
    for p in paths:
        try:
            out.append(Path(p).resolve().relative_to(base).as_posix())
        except ValueError:
            out.append(str(p))
    return out


def preprocess_fields(preset: str, size: int, dataset: str) -> dict[str, Any]:
    """The protocol's input fields of a test transform preset (datasets/transforms.py) at side `size`:
    'imagenet_test' resizes the short side to round(size / 0.875) and centre-crops size; 'resize_test' resizes to
    size x size (on CIFAR at 32 px nothing: the images are 32 px)."""
    size = int(size)
    if preset == "imagenet_test":
        return {"input_size": size, "resize": int(round(size / 0.875)), "crop": size}
    if preset == "resize_test":
        same = dataset.startswith("cifar") and size == CIFAR_SIDE
        return {"input_size": size, "resize": None if same else [size, size], "crop": None}
    return {"input_size": size, "resize": f"preset {preset}", "crop": None}  # a training preset used to validate


def classification_protocol(preprocess: dict[str, Any], mean: Sequence[float], std: Sequence[float]) -> dict[str, Any]:
    """The protocol fields of a classification record (results.protocol_block adds the CPU pin)."""
    return {
        "input_size": preprocess["input_size"],
        "resize": preprocess["resize"],
        "crop": preprocess["crop"],
        "normalize_mean": [float(v) for v in mean],
        "normalize_std": [float(v) for v in std],
        "topk": "torch.topk, CutMix-PyTorch test.py accuracy",
        "ece_bins": ECE_BINS,
        "ece_norm": "l1",
        "rms_bin_size": RMS_BIN_SIZE,
        "rms_reference": "calib_err(p='2'), hendrycks calibration_tools.py",
    }


def reader_identity(dataset: Any, spec: dict[str, Any]) -> tuple[str, Path, list[str]]:
    """(dataset name, data root, image ids) of a train_cls validation reader (a datasets/classification.py dataset)
    and its config `spec` (type, root, split, variant): the names and ids test_cls gives the same images."""
    kind = str(spec.get("type"))
    if hasattr(dataset, "data") and hasattr(dataset, "variant"):  # CIFARDataset: its resolved folder and variant
        return str(dataset.variant), Path(dataset.folder), [str(i) for i in range(len(dataset))]
    if kind == "CUBCls":
        from ..datasets.cub import resolve_cub_root

        root = resolve_cub_root(Path(str(spec.get("root"))))
        return "cub", root, relative_image_ids(dataset.paths, root)
    root = Path(str(spec.get("root")))
    if hasattr(dataset, "items"):
        return READER_DATASETS.get(kind, kind), root, relative_image_ids([p for p, _ in dataset.items], root)
    if hasattr(dataset, "paths"):
        return READER_DATASETS.get(kind, kind), root, relative_image_ids(dataset.paths, root)
    return READER_DATASETS.get(kind, kind), root, [str(i) for i in range(len(dataset))]
