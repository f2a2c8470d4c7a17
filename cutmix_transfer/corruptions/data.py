"""What one corruption evaluation reads: the corrupted sets (datasets/corruptions.py's readers), the optional clean
set, the image selection, and the pixel pipeline of each (docs/corruption_protocol.md).

Preprocessing (`--c-preprocess`, recorded in the record's protocol block):
- 'center-crop' (default): a centre crop at the network input side S, hendrycks/robustness ImageNet-C/test.py's
  `CenterCrop(224)`, the identity for the released 224 px JPEGs (and for CIFAR-C's 32 px images at S = 32);
- 'resize-crop': resize the short side to round(S / 0.875), then centre crop S (AugMix imagenet.py's
  `Resize(256), CenterCrop(224)`), as some codebases feed ImageNet-C.
The clean ImageNet val always goes through resize-crop (test.py's clean loader); the clean CIFAR test set through
the same transform as its corrupted copies. Then ToTensor and Normalize(mean, std).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from ..datasets.classification import CIFARDataset
from ..datasets.common import load_rgb
from ..datasets.corruptions import CorruptedData, load_cifar_c, load_imagenet_c
from ..datasets.imagenet import load_imagenet_val, load_synsets, resolve_imagenet_root
from ..errors import ConfigError, DatasetError

DATASETS = ("imagenet", "cifar10", "cifar100")
C_PREPROCESS = ("center-crop", "resize-crop")
CROP_FRACTION = 0.875  # resize S / 0.875, centre crop S: 256 -> 224
DEFAULT_IMAGE_SIZE = {"imagenet": 224, "cifar10": 32, "cifar100": 32}
CLEAN = "clean"  # the name of the clean set among the evaluated sets


@dataclass
class CleanSet:
    """The clean images matching the corrupted sets' keys: ImageNet val files (paths) or the CIFAR test array."""

    root: Path
    paths: list[Path] | None = None
    array: np.ndarray | None = None  # CIFAR: (N, 32, 32, 3) uint8


def c_transform(preprocess: str, size: int, mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    """The corrupted images' pipeline for `--c-preprocess` (module docstring)."""
    if preprocess not in C_PREPROCESS:
        raise ConfigError(f"--c-preprocess {preprocess!r}: choose one of {', '.join(C_PREPROCESS)}")
    head = [T.CenterCrop(size)]
    if preprocess == "resize-crop":
        head = [T.Resize(int(round(size / CROP_FRACTION))), T.CenterCrop(size)]
    return T.Compose([*head, T.ToTensor(), T.Normalize(tuple(mean), tuple(std))])


def clean_transform(dataset: str, preprocess: str, size: int, mean: Sequence[float], std: Sequence[float]):
    """The clean set's pipeline: resize-crop for the ImageNet val, the corrupted images' own for CIFAR."""
    return c_transform("resize-crop" if dataset == "imagenet" else preprocess, size, mean, std)


def _synsets_file(root: Path) -> Path:
    path = root / "LOC_synset_mapping.txt"
    return path if path.is_file() or not (root.parent / path.name).is_file() else root.parent / path.name


def load_data(
    dataset: str,
    corruption_root: str | os.PathLike | None,
    data_root: str | os.PathLike | None,
    corruptions: Sequence[str],
    severities: Sequence[int],
    skip: bool,
) -> tuple[CorruptedData, CleanSet | None]:
    """The corrupted sets and, with `data_root`, the clean set they were made from (its labels must agree)."""
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    if dataset == "imagenet":
        if data_root is None:
            return load_imagenet_c(corruption_root, corruptions, severities, skip), None
        root = resolve_imagenet_root(data_root)
        wnids = [w for w, _ in load_synsets(_synsets_file(root))]
        samples = load_imagenet_val(root, check_images=False)
        clean = {f"{wnids[s.label]}/{Path(s.path).name}": Path(s.path) for s in samples}
        data = load_imagenet_c(corruption_root, corruptions, severities, skip, classes=wnids, reference_keys=clean)
        return data, CleanSet(root, paths=[clean[k] for k in data.keys])
    variant = dataset
    if data_root is None:
        data = load_cifar_c(
            corruption_root, corruptions, severities, skip, num_classes=10 if variant == "cifar10" else 100
        )
        return data, None
    ident = {"preset": "resize_test", "size": 32}
    clean = CIFARDataset(str(data_root), "test", ident, variant=variant)
    data = load_cifar_c(corruption_root, corruptions, severities, skip, classes=list(clean.classes))
    labels = np.asarray(clean.labels, dtype=np.int64)
    if labels.size != data.labels.size or not np.array_equal(labels, data.labels):
        raise DatasetError(
            f"{data.root / 'labels.npy'}: its {data.labels.size} labels per severity are not the clean {variant} test "
            f"labels under {data_root} ({labels.size}); the corruption release and --data-root do not belong together"
        )
    return data, CleanSet(Path(data_root), array=clean.data)


def select_images(n: int, max_images: int | None, seed: int) -> np.ndarray:
    """Positions of the clean images to evaluate (in every set): all n, or a seeded subset of max_images, sorted."""
    if max_images is None or max_images >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([int(seed), 0])
    return np.sort(rng.choice(n, size=int(max_images), replace=False)).astype(np.int64)


class EvalItems(torch.utils.data.Dataset):
    """Item k * n + j: image j of the selection in set k (set 0 the clean set when there is one), as
    {item, pixels, error}. Never raises: a read failure comes back as an error text naming the file."""

    def __init__(
        self,
        data: CorruptedData,
        clean: CleanSet | None,
        selected: np.ndarray,
        transform: T.Compose,
        clean_tf: T.Compose | None,
        size: int,
    ) -> None:
        self.data, self.clean, self.selected = data, clean, selected
        self.transform, self.clean_tf, self.size = transform, clean_tf, int(size)
        self.sets: list[Any] = ([CLEAN] if clean is not None else []) + list(data.sets)

    def __len__(self) -> int:
        return len(self.sets) * len(self.selected)

    def locate(self, item: int) -> tuple[int, int]:
        """(set position, selection position) of an item."""
        return divmod(int(item), len(self.selected))

    def _image(self, k: int, pos: int) -> tuple[Image.Image, Any]:
        s = self.sets[k]
        if s == CLEAN:
            if self.clean.array is not None:
                return Image.fromarray(np.asarray(self.clean.array[pos])), self.clean_tf
            return load_rgb(self.clean.paths[pos]), self.clean_tf
        if self.data.layout == "cifar-c":
            return Image.fromarray(self.data.image_array(s, pos)), self.transform
        return load_rgb(self.data.image_path(s, self.data.keys[pos])), self.transform

    def where(self, item: int) -> str:
        """The file (or .npy row) an item reads, for error messages."""
        k, j = self.locate(item)
        pos, s = int(self.selected[j]), self.sets[k]
        if s == CLEAN:
            return f"{self.clean.root} (clean image {self.data.keys[pos]})"
        if self.data.layout == "cifar-c":
            return f"{s.source} row {s.offset + pos}"
        return str(self.data.image_path(s, self.data.keys[pos]))

    def __getitem__(self, item: int) -> dict[str, Any]:
        k, j = self.locate(item)
        try:
            image, tf = self._image(k, int(self.selected[j]))
            return {"item": int(item), "pixels": tf(image), "error": ""}
        except Exception as e:  # noqa: BLE001 -- any decoder failure means "unreadable"
            err = f"unreadable image: {self.where(item)} ({type(e).__name__}: {e})"
            return {"item": int(item), "pixels": torch.zeros(3, self.size, self.size), "error": err}


class RankBatches(torch.utils.data.Sampler):
    """The batches of items 0..total-1 one rank evaluates: the single-process batch sequence (consecutive items,
    `batch_size` each), every world-th from `rank`, so every item is in the batch it has in one process."""

    def __init__(self, total: int, batch_size: int, rank: int, world: int) -> None:
        self.total, self.bs, self.rank, self.world = int(total), int(batch_size), int(rank), int(world)

    def __iter__(self):
        for b in range(self.rank, (self.total + self.bs - 1) // self.bs, self.world):
            yield list(range(b * self.bs, min((b + 1) * self.bs, self.total)))

    def __len__(self) -> int:
        n = (self.total + self.bs - 1) // self.bs
        return max(0, (n - self.rank + self.world - 1) // self.world)
