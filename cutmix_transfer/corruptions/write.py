"""Corrupted copies of a clean set in the released layouts (docs/corruption_protocol.md, "Generation"):

- ImageNet-C layout: `<out>/<corruption>/<severity>/<wnid>/<file name>` (suffix .JPEG), each clean image made
  square first ('resize-crop': short side to round(S / 0.875), centre crop S, as make_imagenet_c.py's Resize(256) +
  CenterCrop(224); 'resize': Resize((S, S)), as make_tinyimagenet_c.py), corrupted, truncated to uint8 and saved
  as a JPEG at the release's quality 85 (PIL, optimize=True);
- CIFAR-C layout: `<out>/<corruption>.npy`, (5 N, 32, 32, 3) uint8, severity s in rows (s-1) N .. s N - 1, and
  `<out>/labels.npy` (the test labels 5 times, uint8 as released).

Each (corruption, severity, image) draws from its own RandomState seeded with [seed, corruption's index in
ALL_CORRUPTIONS, severity, image index]: the same files for the same seed, whatever the order or worker count.
`<out>/corruptions_manifest.json` (written last, atomically) records how the copy was made; the evaluator copies it
into its record.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Sequence
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torchvision import transforms as T
from tqdm import tqdm

from ..datasets.common import load_rgb
from ..datasets.corruptions import ALL_CORRUPTIONS, SEVERITIES
from ..errors import ConfigError
from ..io import atomic_write_bytes, atomic_write_json
from ..results import package_versions
from .generate import corrupt
from .params import GENERATED, JPEG_QUALITY, NOT_GENERATED, PARAM_SETS

logger = logging.getLogger(__name__)
MANIFEST = "corruptions_manifest.json"
PREPS = ("resize-crop", "resize")


def check_corruptions(corruptions: Sequence[str]) -> list[str]:
    """The corruptions to generate (all generated ones when empty); ConfigError for one this toolkit cannot make."""
    names = list(corruptions) or list(GENERATED)
    for c in names:
        if c in NOT_GENERATED:
            raise ConfigError(f"--corruptions {c}: not generated here ({NOT_GENERATED[c]}); leave it out")
        if c not in GENERATED:
            raise ConfigError(f"--corruptions {c}: unknown; choose among {', '.join(GENERATED)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"--corruptions {' '.join(names)}: each at most once")
    return names


def image_rng(seed: int, corruption: str, severity: int, index: int) -> np.random.RandomState:
    """The RandomState of one corrupted image (module docstring)."""
    return np.random.RandomState([int(seed), ALL_CORRUPTIONS.index(corruption), int(severity), int(index)])


def square(image: Image.Image, side: int, prep: str) -> np.ndarray:
    """The clean image as the scripts feed it to a corruption: (side, side, 3) uint8."""
    if prep not in PREPS:
        raise ConfigError(f"--prep {prep!r}: choose one of {', '.join(PREPS)}")
    if prep == "resize":
        tf = T.Resize((side, side))
    else:
        tf = T.Compose([T.Resize(int(round(side / 0.875))), T.CenterCrop(side)])
    return np.asarray(tf(image.convert("RGB")), dtype=np.uint8)


def _manifest(out: Path, layout: str, param_set: str, side: int, seed: int, names, severities, source, **extra):
    atomic_write_json(
        out / MANIFEST,
        {
            "generator": "tools/make_corruptions.py (cutmix_transfer.corruptions.generate)",
            "layout": layout,
            "param_set": param_set,
            "param_set_side": PARAM_SETS[param_set],
            "image_size": int(side),
            "seed": int(seed),
            "corruptions": list(names),
            "severities": list(severities),
            "not_generated": NOT_GENERATED,
            "source": str(source),
            "versions": package_versions(("numpy", "scipy", "opencv-python-headless", "pillow", "torchvision")),
            **extra,
        },
    )


def jpeg_name(key: str) -> str:
    """The file a clean image's corrupted copies get: its own name when it is a JPEG (ImageNet's *.JPEG), else the
    name with the suffix .JPEG (the copies are JPEGs whatever the source format)."""
    return key if key.lower().endswith((".jpeg", ".jpg")) else str(Path(key).with_suffix(".JPEG"))


def _imagenet_job(job: tuple) -> int:
    """Worker: every requested corruption x severity of one clean image, saved as JPEGs; returns the image index."""
    index, key, path, out, names, severities, param_set, side, prep, seed = job
    clean = square(load_rgb(path), side, prep)
    for c in names:
        for s in severities:
            img = corrupt(clean, c, s, image_rng(seed, c, s, index), param_set)
            dest = Path(out) / c / str(s) / jpeg_name(key)
            dest.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(dest, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return index


def write_imagenet_c(
    images: Sequence[tuple[str, str | os.PathLike]],
    out: str | os.PathLike,
    corruptions: Sequence[str] = (),
    severities: Sequence[int] = SEVERITIES,
    param_set: str = "imagenet",
    side: int | None = None,
    prep: str = "resize-crop",
    seed: int = 0,
    workers: int = 0,
    progress: bool = True,
    source: str = "",
) -> dict[str, Any]:
    """Write the ImageNet-C layout for `images`, (key '<class folder>/<file name>', clean image path) pairs.
    -> {images, corruptions, severities, files}."""
    names = check_corruptions(corruptions)
    sev = sorted(int(s) for s in severities)
    side = int(side or PARAM_SETS[param_set])
    out = Path(out)
    jobs = [(i, k, str(p), str(out), names, sev, param_set, side, prep, int(seed)) for i, (k, p) in enumerate(images)]
    bar = dict(total=len(jobs), desc="ImageNet-C layout", unit="image", disable=not progress)
    if workers > 0:
        with get_context("fork").Pool(workers) as pool:
            for _ in tqdm(pool.imap_unordered(_imagenet_job, jobs), **bar):
                pass
    else:
        for job in tqdm(jobs, **bar):
            _imagenet_job(job)
    _manifest(out, "imagenet-c", param_set, side, seed, names, sev, source, prep=prep, jpeg_quality=JPEG_QUALITY)
    return {"images": len(jobs), "corruptions": names, "severities": sev, "files": len(jobs) * len(names) * len(sev)}


def _save_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def write_cifar_c(
    images: np.ndarray,
    labels: Sequence[int],
    out: str | os.PathLike,
    corruptions: Sequence[str] = (),
    param_set: str = "cifar",
    seed: int = 0,
    progress: bool = True,
    source: str = "",
) -> dict[str, Any]:
    """Write the CIFAR-C layout for (N, S, S, 3) uint8 `images` and their labels (all 5 severities: the layout's
    blocks). -> {images, corruptions, files}."""
    names = check_corruptions(corruptions)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8 or len(images) != len(labels):
        raise ConfigError(f"CIFAR-C needs (N, S, S, 3) uint8 images and N labels, got {images.shape} {images.dtype}")
    out = Path(out)
    n = len(images)
    for c in tqdm(names, desc="CIFAR-C layout", unit="corruption", disable=not progress):
        arr = np.zeros((len(SEVERITIES) * n, *images.shape[1:]), dtype=np.uint8)
        for s in SEVERITIES:
            for i in range(n):
                arr[(s - 1) * n + i] = corrupt(images[i], c, s, image_rng(seed, c, s, i), param_set)
        _save_npy(out / f"{c}.npy", arr)
    labels = np.asarray(labels)
    dtype = np.uint8 if labels.size == 0 or int(labels.max()) < 256 else np.int64
    _save_npy(out / "labels.npy", np.tile(labels.astype(dtype), len(SEVERITIES)))
    _manifest(out, "cifar-c", param_set, images.shape[1], seed, names, list(SEVERITIES), source)
    return {"images": n, "corruptions": names, "files": len(names) + 1}


def read_manifest(root: str | os.PathLike) -> dict[str, Any] | None:
    """A generated copy's manifest (None for the release, which has none, or an unreadable one)."""
    path = Path(root) / MANIFEST
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None
