"""The test images of a classification evaluation, read by the project's readers in CutMix-PyTorch's test inputs
(docs/classification_protocol.md).

- ImageNet val: torchvision's ImageFolder layout `<root>/val/<wnid>/*` (CutMix-PyTorch's test.py, this project's
  train_cls), else the Kaggle ILSVRC layout (flat val images, XML / LOC_val_solution.csv labels); resize the short
  side to round(S / 0.875) (256 for S = 224), centre crop S.
- CIFAR-10 / -100: the python-pickle test batch, the 32 px image as it is (no resize, no crop).
- CUB-200-2011: the raw layout's test split, resized to S x S (wsolevaluation's and configs/cls/cub_*'s test input).
Every image is scaled to [0, 1] by the reader and normalised with the evaluation's mean / std by `SafeImages`
(once the checkpoint's meta has said which). Image ids: the CIFAR index (as
train_cls), else the image path relative to the data root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..datasets.classification import CIFARDataset, CUBDataset, ImageFolderDataset
from ..datasets.common import load_rgb
from ..datasets.cub import resolve_cub_root
from ..datasets.transforms import build_transform
from ..datasets.wsol_data import load_eval_data
from ..errors import ConfigError, DatasetError
from .identity import preprocess_fields, relative_image_ids

DATASETS = ("imagenet", "cifar100", "cifar10", "cub")
DEFAULT_DATA_ROOTS = {
    "imagenet": Path("data/ILSVRC"),
    "cifar100": Path("data/cifar"),
    "cifar10": Path("data/cifar"),
    "cub": Path("data/CUB_200_2011"),
}
DEFAULT_IMAGE_SIZE = {"imagenet": 224, "cub": 224, "cifar100": 32, "cifar10": 32}
SPLITS = {"imagenet": "val", "cifar100": "test", "cifar10": "test", "cub": "test"}


@dataclass
class ClsData:
    """One test split: a dataset of {'index', 'image', 'error'} items, labels and ids in item order, class names,
    the class count the dataset declares, and how it was read (layout, preprocessing) for the record."""

    name: str
    split: str
    root: Path
    dataset: Dataset
    labels: list[int]
    image_ids: list[str]
    classes: list[str]
    layout: str
    preprocess: dict[str, Any]


class _PathImages(Dataset):
    """(path, label) pairs read with the shared RGB loader and a transform (the Kaggle ImageNet layout)."""

    def __init__(self, paths: list[Path], labels: list[int], transform: Any) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"inputs": self.transform(load_rgb(self.paths[index])), "data_samples": self.labels[index]}


class SafeImages(Dataset):
    """Item i of a reader as {'index', 'image', 'error'}: never raises, so the main process can name an unreadable
    file (and --skip-unreadable can skip it); `describe(i)` is the text an error starts with."""

    def __init__(self, base: Dataset, size: int, names: list[str]) -> None:
        self.base, self.size, self.names = base, int(size), names
        self.normalize: Any = None  # applied after the reader's transform (set once the checkpoint says which)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            image = self.base[index]["inputs"]
            return {"index": index, "image": image if self.normalize is None else self.normalize(image), "error": ""}
        except Exception as e:  # noqa: BLE001 -- any decoder failure means "unreadable"
            detail = str(e).splitlines()[0] if str(e) else ""
            err = f"unreadable image: {self.names[index]} ({type(e).__name__}: {detail})"
            return {"index": index, "image": torch.zeros(3, self.size, self.size), "error": err}


def load_cls_data(
    dataset: str, data_root: str | os.PathLike | None, image_size: int, mean: tuple, std: tuple
) -> ClsData:
    """The test split of `dataset` under `data_root` (default DEFAULT_DATA_ROOTS) at input side `image_size`,
    normalised with mean / std; DatasetError / ConfigError naming the path and the fix."""
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    root = Path(data_root) if data_root is not None else DEFAULT_DATA_ROOTS[dataset]
    size, split = int(image_size), SPLITS[dataset]
    norm = dict(mean=tuple(mean), std=tuple(std))
    if dataset.startswith("cifar"):
        if size != 32:
            raise ConfigError(f"--image-size {size}: CIFAR images are evaluated at their 32 px, as CutMix-PyTorch")
        base = CIFARDataset(str(root), "test", dict(preset="resize_test", size=32, **norm), variant=dataset)
        ids, layout, root = [str(i) for i in range(len(base))], "cifar-python", Path(base.folder)
        preprocess = preprocess_fields("resize_test", 32, dataset)
        classes, labels = list(base.classes), list(base.labels)
    elif dataset == "cub":
        root = resolve_cub_root(root)
        base = CUBDataset(str(root), "test", dict(preset="resize_test", size=size, **norm))
        ids, layout = relative_image_ids(base.paths, root), "cub-raw"
        preprocess = preprocess_fields("resize_test", size, dataset)
        classes, labels = list(base.classes), list(base.labels)
    else:
        transform = dict(preset="imagenet_test", size=size, **norm)
        preprocess = preprocess_fields("imagenet_test", size, dataset)
        folder_root = root / "Data" / "CLS-LOC" if (root / "Data" / "CLS-LOC" / "val").is_dir() else root
        val = folder_root / "val"
        if val.is_dir() and any(p.is_dir() for p in val.iterdir()):
            base = ImageFolderDataset(str(folder_root), "val", transform)
            ids, layout = relative_image_ids([p for p, _ in base.items], folder_root), "imagefolder"
            classes, labels, root = list(base.classes), list(base.labels), folder_root
        else:
            data = load_eval_data("imagenet", root, "val")
            paths = [s.path for s in data.samples]
            labels = [int(s.label) for s in data.samples]
            base = _PathImages(paths, labels, build_transform(**transform))
            ids, layout, root = relative_image_ids(paths, data.data_root), "ilsvrc-kaggle", data.data_root
            classes = list(data.class_names or [str(i) for i in range(int(data.num_classes or 0))])
    if len(base) == 0:
        raise DatasetError(f"the {dataset} {split} split under {root} holds no images; check --data-root")
    names = [f"{root} test image {i}" if dataset.startswith("cifar") else str(root / i) for i in ids]
    return ClsData(
        name=dataset,
        split=split,
        root=Path(root),
        dataset=SafeImages(base, size, names),
        labels=labels,
        image_ids=ids,
        classes=classes,
        layout=layout,
        preprocess={**preprocess, "layout": layout},
    )
