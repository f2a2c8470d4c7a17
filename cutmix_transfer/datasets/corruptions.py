"""Readers of the corruption benchmarks as released (Hendrycks & Dietterich, ICLR 2019; docs/corruption_protocol.md).

- ImageNet-C (and Tiny-ImageNet-C, and what tools/make_corruptions.py writes): `<root>/<corruption>/<severity>/
  <wnid>/<image>`, severities 1..5, the clean val images' file names inside their class's wnid folder. An image's
  key is `<wnid>/<file name>`, the same in every corruption x severity folder: it identifies the clean image.
- CIFAR-10-C / CIFAR-100-C: `<root>/<corruption>.npy`, (5 N, 32, 32, 3) uint8, severity s in rows (s-1) N .. s N - 1
  (N = 10,000 in the release), image i of each block the clean test image i; plus `<root>/labels.npy`, 5 N labels.
  An image's key is its clean test index.

Any subset of the corruptions may be present: the absent ones are listed (`missing`). What is present but broken
(a missing severity folder, a folder whose images are not the other folders' (count or names), a truncated or
malformed .npy, a label count that does not match) raises DatasetError naming the path, or, with `skip`, leaves that
corruption x severity out and lists it in `skipped`.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

# The 15 corruptions of the benchmark (ImageNet-C/test.py's order), then the 4 held-out extras.
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".ppm", ".bmp", ".pgm")  # hendrycks' make_imagenet_c.py IMG_EXTENSIONS
IMAGENET_C_LAYOUT = "ImageNet-C (<root>/<corruption>/<severity 1-5>/<wnid>/<image>.JPEG)"
CIFAR_C_LAYOUT = "CIFAR-10-C / CIFAR-100-C (<root>/<corruption>.npy, (5 N, 32, 32, 3) uint8, and <root>/labels.npy)"
SKIP_FIX = "pass --skip-unreadable to leave it out (listed in results.json)"


@dataclass
class CorruptionSet:
    """One corruption x severity that will be evaluated: its folder (ImageNet-C) or .npy file and row offset."""

    corruption: str
    severity: int
    source: Path
    offset: int = 0  # CIFAR-C: the first row of the severity's block

    @property
    def name(self) -> str:
        return set_name(self.corruption, self.severity)


@dataclass
class CorruptedData:
    """A corruption benchmark as found on disk.

    keys: the clean images' keys, the same in every set (ImageNet-C: sorted; CIFAR-C: test index order); labels:
    their class indices; classes: class names in index order (ImageNet-C: wnids); sets: the corruption x severity
    sets to evaluate; missing: requested corruptions with no folder / file; skipped: broken sets left out ({set,
    path, error}); layout: 'imagenet-c' or 'cifar-c'; arrays: CIFAR-C's memory-mapped .npy per corruption.
    """

    layout: str
    root: Path
    keys: list[str]
    labels: np.ndarray
    classes: list[str]
    sets: list[CorruptionSet]
    missing: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def image_path(self, s: CorruptionSet, key: str) -> Path:
        """ImageNet-C: the file of clean image `key` in set `s`."""
        return s.source / key

    def image_array(self, s: CorruptionSet, index: int) -> np.ndarray:
        """CIFAR-C: the (32, 32, 3) uint8 image of clean image `index` in set `s`."""
        return np.asarray(self.arrays[s.corruption][s.offset + int(index)])


def set_name(corruption: str, severity: int) -> str:
    """The name of one corruption x severity set in records and files: '<corruption>/<severity>'."""
    return f"{corruption}/{int(severity)}"


def check_selection(corruptions: Sequence[str], severities: Sequence[int]) -> tuple[list[str], list[int]]:
    """The requested corruptions (all 19 when empty) and severities, validated: ConfigError for an unknown name, a
    severity outside 1..5 or a repeat."""
    names = list(corruptions) or list(ALL_CORRUPTIONS)
    bad = [c for c in names if c not in ALL_CORRUPTIONS]
    if bad or len(set(names)) != len(names):
        raise ConfigError(
            f"--corruptions {' '.join(names)}: use each at most once, from {', '.join(ALL_CORRUPTIONS)}"
            + (f" ({', '.join(bad)} unknown)" if bad else "")
        )
    sev = [int(s) for s in severities]
    if not sev or any(s not in SEVERITIES for s in sev) or len(set(sev)) != len(sev):
        raise ConfigError(f"--severities {' '.join(map(str, severities))}: choose among 1 2 3 4 5, each once")
    return names, sorted(sev)


def _broken(skipped: list[dict[str, Any]], skip: bool, name: str, path: Path, error: str) -> None:
    """A broken set: DatasetError '<path>: <error>; <fix>' unless `skip`, else logged and listed."""
    if not skip:
        raise DatasetError(f"{path}: {error}; fix or re-extract it, or {SKIP_FIX}")
    logger.warning("skipping %s (%s): %s", name, path, error)
    skipped.append({"set": name, "path": str(path), "error": error})


def _require_root(root: str | os.PathLike | None, layout: str) -> Path:
    if root is None:
        raise ConfigError(f"--corruption-root is required: the folder of the {layout} release")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"corruption folder not found: {root}. Expected {layout} there; pass --corruption-root the folder that "
            f"holds the corruption folders / files (or write one with tools/make_corruptions.py)"
        )
    return root


def _list_images(folder: Path) -> list[str]:
    """'<wnid>/<file>' of every image file one level below `folder`'s class folders, sorted."""
    keys = []
    for cls in sorted(os.scandir(folder), key=lambda e: e.name):
        if not cls.is_dir() or cls.name.startswith("."):
            continue
        for f in os.scandir(cls.path):
            if f.is_file() and not f.name.startswith(".") and f.name.lower().endswith(IMAGE_SUFFIXES):
                keys.append(f"{cls.name}/{f.name}")
    return sorted(keys)


def load_imagenet_c(
    root: str | os.PathLike | None,
    corruptions: Sequence[str] = (),
    severities: Sequence[int] = SEVERITIES,
    skip: bool = False,
    classes: Sequence[str] | None = None,
    reference_keys: Sequence[str] | None = None,
) -> CorruptedData:
    """The ImageNet-C layout under `root` (module docstring).

    classes: the wnids in class-index order (the clean val's LOC_synset_mapping.txt); None: the sorted wnid folders,
    as torchvision's ImageFolder (hendrycks' test.py) numbers them. reference_keys: the clean val's keys, which every
    set must hold exactly; None: the key list most sets share.
    """
    root = _require_root(root, IMAGENET_C_LAYOUT)
    names, sev = check_selection(corruptions, severities)
    missing = [c for c in names if not (root / c).is_dir()]
    present = [c for c in names if c not in missing]
    if not present:
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetError(
            f"{root}: none of the requested corruptions ({', '.join(names)}) has a folder here (found: "
            f"{', '.join(found) or 'nothing'}). Expected {IMAGENET_C_LAYOUT}"
        )
    skipped: list[dict[str, Any]] = []
    listed: dict[tuple[str, int], list[str]] = {}
    for c in present:
        for s in sev:
            folder = root / c / str(s)
            if not folder.is_dir():
                _broken(skipped, skip, set_name(c, s), folder, "missing severity folder")
                continue
            keys = _list_images(folder)
            if not keys:
                _broken(skipped, skip, set_name(c, s), folder, "no <wnid>/<image> files in this severity folder")
                continue
            listed[(c, s)] = keys
    if reference_keys is None:
        if not listed:
            raise DatasetError(f"{root}: no readable corruption x severity folder ({len(skipped)} skipped)")
        common = Counter(tuple(k) for k in listed.values()).most_common(1)[0][0]
        reference, what = list(common), "the other severity folders"
    else:
        reference, what = sorted(reference_keys), "the clean val set (--data-root)"
    ref_set = set(reference)
    sets = []
    for (c, s), keys in listed.items():
        if keys != reference:
            extra = len(set(keys) - ref_set)
            why = (
                f"wrong image count: {len(keys)} images, expected {len(reference)} as in {what}"
                if len(keys) != len(reference)
                else f"{extra} image files are not those of {what}"
            )
            _broken(skipped, skip, set_name(c, s), root / c / str(s), why)
            continue
        sets.append(CorruptionSet(c, s, root / c / str(s)))
    if not sets:
        raise DatasetError(f"{root}: every requested corruption x severity was skipped ({len(skipped)}); nothing to do")
    wnids = sorted({k.split("/", 1)[0] for k in reference}) if classes is None else list(classes)
    index = {w: i for i, w in enumerate(wnids)}
    unknown = sorted({k.split("/", 1)[0] for k in reference} - set(index))
    if unknown:
        raise DatasetError(
            f"{root}: class folders {', '.join(unknown[:5])} are not synsets of the clean set's "
            f"LOC_synset_mapping.txt; the corruption release and --data-root do not belong together"
        )
    labels = np.array([index[k.split("/", 1)[0]] for k in reference], dtype=np.int64)
    logger.info(
        "ImageNet-C %s: %d images x %d sets (%d skipped, missing corruptions: %s)",
        root,
        len(reference),
        len(sets),
        len(skipped),
        ", ".join(missing) or "none",
    )
    return CorruptedData("imagenet-c", root, reference, labels, wnids, sets, missing, skipped)


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of a .npy file from its header; DatasetError when it is not one."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError) as e:
        raise DatasetError(f"{path}: not a .npy file ({e}); re-download or re-extract it") from None
    if fortran:
        raise DatasetError(f"{path}: a Fortran-order array; the release stores C-order arrays. Re-extract it")
    return tuple(int(n) for n in shape), np.dtype(dtype), offset


def _check_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype, offset: int) -> str:
    """'' when the file holds all the bytes its header promises, else what is wrong."""
    need = offset + int(np.prod(shape)) * dtype.itemsize
    have = path.stat().st_size
    return "" if have >= need else f"truncated .npy: {have - offset} data bytes of the {need - offset} its header says"


def load_cifar_c(
    root: str | os.PathLike | None,
    corruptions: Sequence[str] = (),
    severities: Sequence[int] = SEVERITIES,
    skip: bool = False,
    classes: Sequence[str] | None = None,
    num_classes: int = 100,
) -> CorruptedData:
    """The CIFAR-C layout under `root` (module docstring). classes: the clean set's class names (else 'class_<i>' for
    `num_classes` classes). labels.npy that is missing, malformed or truncated is always an error (every set needs
    it); a corruption file that is broken or whose image count differs from labels.npy's is a broken set."""
    root = _require_root(root, CIFAR_C_LAYOUT)
    names, sev = check_selection(corruptions, severities)
    labels_path = root / "labels.npy"
    if not labels_path.is_file():
        raise DatasetError(f"missing file: {labels_path}. {CIFAR_C_LAYOUT} needs it; re-extract the release")
    lshape, ldtype, loff = npy_header(labels_path)
    bad = _check_npy(labels_path, lshape, ldtype, loff)
    if bad or len(lshape) != 1 or ldtype.kind not in "iu" or lshape[0] % len(SEVERITIES):
        raise DatasetError(
            f"{labels_path}: {bad or f'{ldtype} array of shape {lshape}'}; expected 5 N integer labels. Re-extract it"
        )
    all_labels = np.load(labels_path).astype(np.int64)
    n = all_labels.size // len(SEVERITIES)
    missing = [c for c in names if not (root / f"{c}.npy").is_file()]
    present = [c for c in names if c not in missing]
    if not present:
        found = sorted(p.name for p in root.glob("*.npy"))
        raise DatasetError(
            f"{root}: none of the requested corruptions ({', '.join(names)}) has a .npy file here (found: "
            f"{', '.join(found) or 'nothing'}). Expected {CIFAR_C_LAYOUT}"
        )
    skipped: list[dict[str, Any]] = []
    sets, arrays = [], {}
    for c in present:
        path = root / f"{c}.npy"
        try:
            shape, dtype, off = npy_header(path)
        except DatasetError as e:
            for s in sev:
                _broken(skipped, skip, set_name(c, s), path, str(e).split(": ", 1)[-1])
            continue
        why = _check_npy(path, shape, dtype, off)
        if not why and (dtype != np.uint8 or len(shape) != 4 or shape[1:] != (32, 32, 3)):
            why = f"{dtype} array of shape {shape}, expected (5 N, 32, 32, 3) uint8"
        if not why and shape[0] != all_labels.size:
            why = f"label count mismatch: {shape[0]} images but {labels_path.name} holds {all_labels.size} labels"
        if why:
            for s in sev:
                _broken(skipped, skip, set_name(c, s), path, why)
            continue
        arrays[c] = np.load(path, mmap_mode="r")
        sets.extend(CorruptionSet(c, s, path, offset=(s - 1) * n) for s in sev)
    if not sets:
        raise DatasetError(f"{root}: every requested corruption x severity was skipped ({len(skipped)}); nothing to do")
    blocks = all_labels.reshape(len(SEVERITIES), n)
    if not (blocks == blocks[0]).all():
        raise DatasetError(
            f"{labels_path}: the 5 severity blocks of {n} labels differ; the release repeats the test labels once "
            f"per severity. Re-extract it"
        )
    names_ = list(classes) if classes is not None else [f"class_{i}" for i in range(int(num_classes))]
    if blocks[0].size and (blocks[0].min() < 0 or blocks[0].max() >= len(names_)):
        raise DatasetError(f"{labels_path}: labels span {blocks[0].min()}..{blocks[0].max()}, not 0..{len(names_) - 1}")
    logger.info(
        "CIFAR-C %s: %d images x %d sets (%d skipped, missing corruptions: %s)",
        root,
        n,
        len(sets),
        len(skipped),
        ", ".join(missing) or "none",
    )
    keys = [str(i) for i in range(n)]
    return CorruptedData("cifar-c", root, keys, blocks[0].copy(), names_, sets, missing, skipped, arrays)
