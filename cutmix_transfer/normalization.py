"""Which mean / std an evaluator normalises images with: the one the checkpoint was trained with.

A classifier only gives its trained numbers on inputs normalised as in its training. The order of precedence every
evaluator applies (`resolve_normalization`):
1. `--mean M M M --std S S S` on the command line (e.g. akamaster/pytorch_resnet_cifar10's CIFAR-10 ResNets, trained
   with ImageNet's statistics: `--mean 0.485 0.456 0.406 --std 0.229 0.224 0.225`);
2. the checkpoint's meta (this project's trainers record the training transform's mean / std in
   meta['cutmix_transfer'], see `dataset_normalization`);
3. the dataset's statistics as its reference code normalises (`DATASET_STATS`): ImageNet's for ImageNet, CUB and
   OpenImages, CutMix-PyTorch's CIFAR statistics for CIFAR-10 and CIFAR-100 (its train.py / test.py use the same
   for both).
The chosen statistics and where they came from go into the record's protocol block (`Normalization.protocol`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .datasets.common import CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD, IMAGENET_MEAN, IMAGENET_STD
from .errors import ConfigError

# dataset -> (mean, std) of images scaled to [0, 1], as the dataset's reference code normalises them
DATASET_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "cub": (IMAGENET_MEAN, IMAGENET_STD),
    "openimages": (IMAGENET_MEAN, IMAGENET_STD),  # wsolevaluation normalises every dataset with ImageNet's
    "cifar100": (CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD),
    "cifar10": (CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD),
}
SOURCES = ("command line", "checkpoint meta", "dataset default")


@dataclass(frozen=True)
class Normalization:
    """Per-channel RGB mean / std of [0, 1] pixels, and where they came from (one of SOURCES)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str

    def protocol(self) -> dict[str, Any]:
        """The record's protocol entries (the OOD evaluator's key names): normalize_mean and normalize_std. Where they
        came from (`source`) is provenance, recorded beside the block: equal statistics are one protocol."""
        return {"normalize_mean": list(self.mean), "normalize_std": list(self.std)}


def _triple(values: Sequence[float] | None, what: str, positive: bool) -> tuple[float, float, float]:
    """Three finite floats (positive ones for a std); ConfigError naming `what` otherwise."""
    try:
        out = tuple(float(v) for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(math.isfinite(v) for v in out) or (positive and min(out) <= 0):
        kind = "three positive numbers" if positive else "three numbers"
        raise ConfigError(
            f"{what} {values!r}: give {kind}, one per RGB channel of [0, 1] pixels (e.g. 0.229 0.224 0.225)"
        )
    return out  # type: ignore[return-value]


def resolve_normalization(
    meta: Mapping[str, Any] | None,
    dataset: str,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Normalization:
    """The statistics to evaluate a checkpoint with: `mean` / `std` (both or neither), else the checkpoint meta's
    'mean' / 'std' (a LoadedBackbone's meta), else the dataset's (DATASET_STATS); see the module docstring."""
    if (mean is None) != (std is None):
        raise ConfigError("--mean and --std go together: give both (three numbers each) or neither")
    if mean is not None:
        return Normalization(_triple(mean, "--mean", False), _triple(std, "--std", True), "command line")
    meta = meta or {}
    if meta.get("mean") is not None and meta.get("std") is not None:
        return Normalization(
            _triple(meta["mean"], "checkpoint meta mean", False),
            _triple(meta["std"], "checkpoint meta std", True),
            "checkpoint meta",
        )
    if dataset not in DATASET_STATS:
        raise ConfigError(f"no default statistics for dataset {dataset!r}: pass --mean and --std")
    m, s = DATASET_STATS[dataset]
    return Normalization(tuple(m), tuple(s), "dataset default")  # type: ignore[arg-type]


def transform_normalization(transform: Any) -> tuple[list[float], list[float]] | None:
    """(mean, std) of the first torchvision Normalize in a transform (a Compose, searched through its
    `.transforms`), or None when it has none."""
    from torchvision.transforms import Normalize

    if isinstance(transform, Normalize):
        return [float(v) for v in transform.mean], [float(v) for v in transform.std]
    for t in getattr(transform, "transforms", None) or ():
        found = transform_normalization(t)
        if found is not None:
            return found
    return None


def dataset_normalization(dataset: Any) -> dict[str, list[float]]:
    """{'mean', 'std'} of a training dataset's transform (through wrappers that hold `.dataset`, e.g.
    runner.SeededDataset), for the checkpoint meta; {} when there is no Normalize to read."""
    seen = 0
    while dataset is not None and seen < 8:
        found = transform_normalization(getattr(dataset, "transform", None))
        if found is not None:
            return {"mean": found[0], "std": found[1]}
        dataset, seen = getattr(dataset, "__dict__", {}).get("dataset"), seen + 1
    return {}
