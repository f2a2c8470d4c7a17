"""The images of an OOD evaluation: the in-distribution CIFAR test set and the OOD sets (docs/ood_protocol.md).

- In-distribution: CIFAR-100 (or CIFAR-10) in the python-pickle layout, read by the project's CIFAR reader
  (``datasets.classification.CIFARDataset``), at 32x32 without crop, pixels / 255 normalised with the statistics
  the checkpoint was trained with (--mean / --std, else its meta's, else CutMix-PyTorch's CIFAR statistics
  ``datasets.common.CIFAR100_CUTMIX_MEAN`` / ``_STD``; `normalized`).
- OOD folders, as ODIN's public release (``Imagenet``, ``Imagenet_resize``, ``LSUN``, ``LSUN_resize``, ``iSUN``):
  every image file below the folder (recursively; hidden files skipped), in sorted order of the relative path.
  An image is converted to RGB; one that is not 32x32 is resized to 32x32 with PIL's bilinear filter (the whole
  image, no crop, aspect ratio not kept). Then the same normalisation as the in-distribution images.
- Noise, as ODIN defines it: ``uniform`` (every value of the 3x32x32 image i.i.d. uniform on [0, 1)) and
  ``gaussian`` (i.i.d. N(0.5, 1), clipped to [0, 1]). Image i of a set comes from its own generator,
  numpy PCG64 seeded with (seed, set, i): the same seed gives the same images, whatever the count or batch size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..datasets.classification import CIFARDataset
from ..datasets.common import CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD
from ..datasets.transforms import build_transform
from ..errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

IMAGE_SIZE = 32
DEFAULT_NOISE_COUNT = 10_000
NOISE_SETS = ("uniform", "gaussian")
ODIN_SETS = ("Imagenet", "Imagenet_resize", "LSUN", "LSUN_resize", "iSUN")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
IN_DISTRIBUTION_KEY = "in_distribution"
_NOISE_STREAM = {"uniform": 1, "gaussian": 2}
# --in-dataset -> (CIFARDataset variant, folder name, files the test split needs, archive of the python version)
IN_DATASETS = {
    "cifar100": ("cifar100", "cifar-100-python", ("test", "meta"), "cifar-100-python.tar.gz"),
    "cifar10": ("cifar10", "cifar-10-batches-py", ("test_batch", "batches.meta"), "cifar-10-python.tar.gz"),
}
DEFAULT_DATA_ROOT = Path("data/cifar")


# ----------------------------------------------------------------------------------------------------------
# In-distribution
# ----------------------------------------------------------------------------------------------------------
def resolve_cifar_folder(root: str | os.PathLike, in_dataset: str = "cifar100") -> Path:
    """The folder holding the python batches: `root/cifar-100-python` or `root` itself; DatasetError otherwise,
    naming the layout (the python version of CIFAR-100) and what is missing."""
    if in_dataset not in IN_DATASETS:
        raise ConfigError(f"--in-dataset {in_dataset!r}: choose one of {', '.join(IN_DATASETS)}")
    _, sub, needed, archive = IN_DATASETS[in_dataset]
    root = Path(root)
    name = "CIFAR-100" if in_dataset == "cifar100" else "CIFAR-10"
    layout = (
        f"the python version of {name} ({archive} extracted: {root}/{sub}/{{{','.join(needed)}}}, python "
        f"pickles; the binary and MATLAB versions are not read)"
    )
    for folder in (root / sub, root):
        if all((folder / f).is_file() for f in needed):
            return folder
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder not found: {root}. Expected {layout}; pass --data-root the folder that holds {sub}/."
        )
    folder = root / sub if (root / sub).is_dir() else root
    missing = [f for f in needed if not (folder / f).is_file()]
    binary = [p.name for p in root.glob("cifar-*-binary")] + [p.name for p in root.glob("*.bin")]
    hint = f" (found {', '.join(sorted(binary))}: the binary version)" if binary else ""
    raise DatasetError(f"no {name} batches in {folder}: missing {', '.join(missing)}{hint}. Expected {layout}.")


@dataclass
class InDistribution:
    """The in-distribution test set: a dataset of normalised images (item {'inputs', 'data_samples'}), its labels,
    class names in label order, and the normalisation (the OOD images get the same)."""

    name: str
    folder: Path
    dataset: Dataset
    labels: list[int]
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def load_in_distribution(
    in_dataset: str = "cifar100",
    data_root: str | os.PathLike | None = None,
    mean: Sequence[float] = CIFAR100_CUTMIX_MEAN,
    std: Sequence[float] = CIFAR100_CUTMIX_STD,
) -> InDistribution:
    """The CIFAR test split at 32x32 (no crop), normalised with `mean` / `std` (CutMix-PyTorch's by default)."""
    folder = resolve_cifar_folder(DEFAULT_DATA_ROOT if data_root is None else data_root, in_dataset)
    variant = IN_DATASETS[in_dataset][0]
    ds = CIFARDataset(str(folder), "test", _transform_spec(mean, std), variant=variant)
    if len(ds) == 0:
        raise DatasetError(f"the {in_dataset} test batch in {folder} holds no images; re-extract the python version")
    return InDistribution(in_dataset, folder, ds, list(ds.labels), list(ds.classes), tuple(mean), tuple(std))


def _transform_spec(mean: Sequence[float], std: Sequence[float]) -> dict[str, Any]:
    """The in-distribution transform (datasets.transforms.build_transform's spec): 32 px, no crop, `mean` / `std`."""
    return dict(preset="resize_test", size=IMAGE_SIZE, mean=tuple(mean), std=tuple(std))


def normalized(data: InDistribution, mean: Sequence[float], std: Sequence[float]) -> InDistribution:
    """`data` with its images normalised with `mean` / `std` (the checkpoint's, known once it is loaded, which needs
    the data's classes first): its reader's transform is rebuilt in place, and the returned copy records them."""
    data.dataset.transform = build_transform(**_transform_spec(mean, std))
    return replace(data, mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std))


# ----------------------------------------------------------------------------------------------------------
# OOD sets
# ----------------------------------------------------------------------------------------------------------
@dataclass
class OODSet:
    """One OOD set: a folder of images (kind 'folder', `image_ids` relative paths) or generated noise."""

    name: str
    kind: Literal["folder", "uniform", "gaussian"]
    image_ids: list[str]
    root: Path | None = None
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def source(self) -> str:
        """Where the images come from, for the record: the folder, or the noise definition."""
        if self.kind == "folder":
            return str(self.root)
        return f"{self.kind} noise, {len(self)} images, seed {self.seed}: " + (
            "U[0, 1)" if self.kind == "uniform" else "N(0.5, 1) clipped to [0, 1]"
        )


def list_images(folder: str | os.PathLike) -> list[str]:
    """Relative posix paths of the image files below `folder` (recursive; hidden files and folders skipped), sorted."""
    folder = Path(folder)
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a linked folder already listed (or a link loop): list it once
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES:
                found.append(Path(dirpath, f).relative_to(folder).as_posix())
    return sorted(found)


def folder_set(path: str | os.PathLike, name: str | None = None) -> OODSet:
    """An OOD set from a folder of images in ODIN's layout; DatasetError for a missing or empty folder."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(
            f"OOD folder not found: {path}. Pass --ood a folder of images (ODIN's Imagenet, LSUN, "
            f"iSUN, ... extracted) or one of {', '.join(NOISE_SETS)}."
        )
    ids = list_images(path)
    if not ids:
        raise DatasetError(
            f"OOD folder {path} holds no images (looked recursively for "
            f"{', '.join(IMAGE_SUFFIXES)}); extract the set there or pass another folder."
        )
    return OODSet(name or path.resolve().name, "folder", ids, root=path)


def noise_set(kind: str, count: int = DEFAULT_NOISE_COUNT, seed: int = 0) -> OODSet:
    """ODIN's uniform or Gaussian noise set of `count` 32x32 images, generated from `seed`."""
    if kind not in NOISE_SETS:
        raise ConfigError(f"noise set {kind!r}: choose one of {', '.join(NOISE_SETS)}")
    if int(count) < 1:
        raise ConfigError(f"--noise-count {count}: need at least one noise image")
    width = len(str(int(count) - 1))
    return OODSet(kind, kind, [f"{kind}/{i:0{width}d}" for i in range(int(count))], seed=int(seed))


def resolve_ood_sets(specs: Sequence[str], seed: int = 0, noise_count: int = DEFAULT_NOISE_COUNT) -> list[OODSet]:
    """`--ood` values -> OOD sets in the given order: 'uniform' / 'gaussian' (any case) are generated, anything
    else is a folder named by its last path component. Names must be distinct."""
    if not specs:
        raise ConfigError("--ood: name at least one OOD set (a folder of images, uniform or gaussian)")
    sets = []
    for spec in specs:
        low = str(spec).lower()
        sets.append(noise_set(low, noise_count, seed) if low in NOISE_SETS else folder_set(spec))
    names = [s.name for s in sets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(
            f"--ood: two sets are named {dup[0]!r} (a set is named by its folder's name); pass each "
            f"set once, or link one folder under another name"
        )
    if IN_DISTRIBUTION_KEY in names:
        raise ConfigError(
            f"--ood: an OOD folder may not be named {IN_DISTRIBUTION_KEY!r} (the key of the "
            f"in-distribution scores); rename or link it"
        )
    return sets


def noise_image(kind: str, seed: int, index: int) -> np.ndarray:
    """Image `index` of a noise set: (3, 32, 32) float32 in [0, 1], ODIN's definition, from (seed, set, index)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), _NOISE_STREAM[kind], int(index)])))
    shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    if kind == "uniform":
        return rng.random(shape, dtype=np.float32)
    return np.clip(rng.standard_normal(shape, dtype=np.float32) + np.float32(0.5), 0.0, 1.0)


def read_image_32(path: str | os.PathLike) -> np.ndarray:
    """(3, 32, 32) float32 in [0, 1]: PIL, RGB, bilinear resize to 32x32 when the image has another size, / 255.
    Raises OSError / PIL errors for unreadable files."""
    with Image.open(path) as im:
        im.load()
        rgb = im.convert("RGB")
    if rgb.size != (IMAGE_SIZE, IMAGE_SIZE):
        rgb = rgb.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)


class OODImages(Dataset):
    """The images of one OOD set, normalised. Never raises: a read failure comes back as an error text, so the
    evaluation can name the file (or skip it) from the main process."""

    def __init__(
        self, ood: OODSet, mean: Sequence[float] = CIFAR100_CUTMIX_MEAN, std: Sequence[float] = CIFAR100_CUTMIX_STD
    ) -> None:
        self.ood = ood
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.ood)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {"index": index, "error": "", "image": torch.zeros(3, IMAGE_SIZE, IMAGE_SIZE)}
        if self.ood.kind == "folder":
            path = self.ood.root / self.ood.image_ids[index]
            try:
                arr = read_image_32(path)
            except Exception as e:  # noqa: BLE001 -- any decoder failure means "unreadable"
                item["error"] = f"unreadable image: {path} ({type(e).__name__}: {e})"
                return item
        else:
            arr = noise_image(self.ood.kind, self.ood.seed, index)
        item["image"] = (torch.from_numpy(np.ascontiguousarray(arr)) - self.mean) / self.std
        return item
