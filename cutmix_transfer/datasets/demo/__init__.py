"""Seeded generator of small scenes in the real on-disk layouts (CUB, ImageNet val, VOC, COCO captions).

`make_demo_data` writes one folder per layout below `out`, then the manifest (demo_manifest.json: the spec, its
sha256, the class mapping, the counts) and `.demo_complete` last; `read_demo_manifest` reads a completed folder.

Modules: `scene` (class tables, the renderer, per-image RNG streams), `captions` (caption templates), `files`
(image encoding, annotation XML) and one writer module per layout (`cub`, `imagenet`, `voc`, `coco`, and, only
when asked for, `cifar` (CIFAR-100 python pickles) and `ood` (ODIN-style OOD folders)), whose
docstring states its layout's box convention. A new layout is one more writer module (`DIRNAME`,
`write(root, spec, progress) -> counts`, optionally `check(spec)`), its entry in `WRITERS`, its RNG stream ids in
`scene.STREAMS` and its counts in `DemoSpec`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ...errors import ConfigError, DatasetError
from ...io import atomic_write_json, atomic_write_text
from . import cifar, coco, cub, imagenet, ood, openimages, voc
from .captions import make_captions
from .scene import (
    VOC_CLASSES,
    Scene,
    SceneObject,
    check_num_classes,
    demo_class_hues,
    demo_class_mapping,
    demo_class_names,
    demo_cub_class_dirs,
    demo_synsets,
    demo_voc_class_names,
    render_scene,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayoutWriter:
    """One layout: its folder below the demo root, its writer, and its extra checks of the spec."""

    dirname: str
    write: Callable[[Path, DemoSpec, bool], dict]  # (layout root, spec, progress) -> image counts
    check: Callable[[DemoSpec], None] | None = None  # ConfigError when the spec cannot be written in this layout


# The layouts, in the order they are written (and listed in --layouts).
WRITERS: dict[str, LayoutWriter] = {
    "cub": LayoutWriter(cub.DIRNAME, cub.write),
    "imagenet": LayoutWriter(imagenet.DIRNAME, imagenet.write),
    "voc": LayoutWriter(voc.DIRNAME, voc.write, voc.check),
    "coco": LayoutWriter(coco.DIRNAME, coco.write, coco.check),
    "cifar100": LayoutWriter(cifar.DIRNAME, cifar.write, cifar.check),
    "ood": LayoutWriter(ood.DIRNAME, ood.write),
    "openimages": LayoutWriter(openimages.DIRNAME, openimages.write),
}
LAYOUTS = tuple(WRITERS)
# What a caller gets without naming layouts: 'cifar100' and 'ood' (the OOD demo) are written only on request.
DEFAULT_LAYOUTS = ("cub", "imagenet", "voc", "coco")
LAYOUT_DIRS = {key: w.dirname for key, w in WRITERS.items()}

GENERATOR_VERSION = 1
MANIFEST = "demo_manifest.json"
COMPLETE_MARKER = ".demo_complete"


@dataclass
class DemoSpec:
    """Everything that determines the demo's bytes (recorded in demo_manifest.json)."""

    seed: int = 0
    image_size: int = 96
    num_classes: int = 10
    per_class: int = 300
    test_per_class: int = 50
    imagenet_val_per_class: int = 50
    imagenet_train_per_class: int = 0
    det_image_size: int = 160
    voc_trainval_images: int = 300
    voc_test_images: int = 150
    coco_train_images: int = 600
    coco_val_images: int = 300
    cifar_train_per_class: int = 100
    cifar_test_per_class: int = 20
    ood_images_per_set: int = 200
    openimages_per_class: int = 4
    size_jitter: float = 0.2
    layouts: tuple[str, ...] = DEFAULT_LAYOUTS
    version: int = GENERATOR_VERSION


@dataclass
class DemoData:
    """What `make_demo_data` wrote: the root, the class mapping, and image counts per layout."""

    root: Path
    spec: DemoSpec
    classes: list[dict]
    counts: dict
    reused: bool = False

    @property
    def class_names(self) -> list[str]:
        """The demo class names in index order."""
        return [c["name"] for c in self.classes]


def _validate(spec: DemoSpec) -> None:
    """ConfigError naming the first setting that cannot be generated."""
    check_num_classes(spec.num_classes)
    if spec.image_size < 32 or spec.det_image_size < 32:
        raise ConfigError(
            f"image_size={spec.image_size}, det_image_size={spec.det_image_size}: use at least 32 px "
            f"(the head alone is 9 px)."
        )
    for name in (
        "per_class",
        "test_per_class",
        "imagenet_val_per_class",
        "imagenet_train_per_class",
        "voc_trainval_images",
        "voc_test_images",
        "coco_train_images",
        "coco_val_images",
        "cifar_train_per_class",
        "cifar_test_per_class",
        "ood_images_per_set",
        "openimages_per_class",
    ):
        if getattr(spec, name) < 0:
            raise ConfigError(f"{name}={getattr(spec, name)}: counts cannot be negative.")
    if not 0.0 <= spec.size_jitter < 0.5:
        raise ConfigError(f"size_jitter={spec.size_jitter}: use a value in [0, 0.5).")
    unknown = [x for x in spec.layouts if x not in LAYOUTS]
    if unknown or not spec.layouts:
        raise ConfigError(f"layouts={list(spec.layouts)}: choose from {list(LAYOUTS)}.")
    for key, writer in WRITERS.items():
        if key in spec.layouts and writer.check is not None:
            writer.check(spec)


def make_demo_data(
    out: str | os.PathLike,
    seed: int = 0,
    image_size: int = 96,
    per_class: int = 300,
    num_classes: int = 10,
    *,
    test_per_class: int | None = None,
    imagenet_val_per_class: int | None = None,
    imagenet_train_per_class: int = 0,
    det_image_size: int = 160,
    voc_trainval_images: int | None = None,
    voc_test_images: int | None = None,
    coco_train_images: int | None = None,
    coco_val_images: int | None = None,
    cifar_train_per_class: int = 100,
    cifar_test_per_class: int = 20,
    ood_images_per_set: int = 200,
    openimages_per_class: int = 4,
    size_jitter: float = 0.2,
    layouts: Sequence[str] = DEFAULT_LAYOUTS,
    force: bool = False,
    progress: bool = True,
) -> DemoData:
    """Generate the demo data under `out`: CUB_200_2011/, ILSVRC/, VOCdevkit/VOC2007 + VOC2012, coco/.

    `per_class` is CUB train images per class; unset counts follow it (CUB test and ImageNet val:
    per_class // 6; VOC trainval: per_class * num_classes // 10 per year, VOC2007 test half that; COCO
    train2014: per_class * num_classes // 5, val2014 half that). CUB images are square `image_size`;
    ImageNet/COCO sides and VOC (`det_image_size`) sides vary by +-`size_jitter`. Layouts 'cifar100'
    (cifar-100-python/, 32x32, `cifar_train_per_class` / `cifar_test_per_class` per class) and 'ood' (ood/<set>/,
    `ood_images_per_set` each) are written only when `layouts` names them. A run that completes
    writes `.demo_complete` last; a rerun with the same settings reuses it, anything else regenerates.
    """
    derived = max(1, per_class // 6)
    spec = DemoSpec(
        seed=int(seed),
        image_size=int(image_size),
        num_classes=int(num_classes),
        per_class=int(per_class),
        test_per_class=derived if test_per_class is None else int(test_per_class),
        imagenet_val_per_class=derived if imagenet_val_per_class is None else int(imagenet_val_per_class),
        imagenet_train_per_class=int(imagenet_train_per_class),
        det_image_size=int(det_image_size),
        voc_trainval_images=(
            max(4, per_class * num_classes // 10) if voc_trainval_images is None else int(voc_trainval_images)
        ),
        voc_test_images=(max(2, per_class * num_classes // 20) if voc_test_images is None else int(voc_test_images)),
        coco_train_images=(
            max(4, per_class * num_classes // 5) if coco_train_images is None else int(coco_train_images)
        ),
        coco_val_images=(max(4, per_class * num_classes // 10) if coco_val_images is None else int(coco_val_images)),
        cifar_train_per_class=int(cifar_train_per_class),
        cifar_test_per_class=int(cifar_test_per_class),
        ood_images_per_set=int(ood_images_per_set),
        openimages_per_class=int(openimages_per_class),
        size_jitter=float(size_jitter),
        layouts=tuple(dict.fromkeys(layouts)),
    )
    _validate(spec)
    out = Path(out)
    manifest_path, marker = out / MANIFEST, out / COMPLETE_MARKER
    spec_json = json.dumps(asdict(spec), sort_keys=True)
    digest = hashlib.sha256(spec_json.encode()).hexdigest()

    if manifest_path.is_file() and marker.is_file() and not force:
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if marker.read_text().strip() == digest and old.get("spec_sha256") == digest:
            logger.info("demo data in %s is complete and matches the settings; reusing it", out)
            return DemoData(out, spec, demo_class_mapping(spec.num_classes), old.get("counts", {}), reused=True)

    existing = [LAYOUT_DIRS[k] for k in LAYOUTS if (out / LAYOUT_DIRS[k]).exists()]
    if existing and not manifest_path.is_file():
        raise ConfigError(
            f"{out} already holds {', '.join(existing)} that the demo generator did not write "
            f"(no {MANIFEST}); refusing to overwrite what may be a real dataset. Pass an empty "
            f"folder such as data/demo to --out."
        )
    if marker.exists():
        marker.unlink()
    for name in existing:  # ours (the manifest says so): a changed or interrupted run starts clean
        shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        manifest_path, {"generator": __name__, "complete": False, "spec": asdict(spec), "spec_sha256": digest}
    )

    counts = {}
    for key in spec.layouts:
        counts[key] = WRITERS[key].write(out / LAYOUT_DIRS[key], spec, progress)
        logger.info("wrote %s: %s", out / LAYOUT_DIRS[key], counts[key])
    classes = demo_class_mapping(spec.num_classes)
    atomic_write_json(
        manifest_path,
        {
            "generator": __name__,
            "complete": True,
            "spec": asdict(spec),
            "spec_sha256": digest,
            "classes": classes,
            "counts": counts,
            "dirs": {k: LAYOUT_DIRS[k] for k in spec.layouts},
        },
    )
    atomic_write_text(marker, digest + "\n")
    return DemoData(out, spec, classes, counts)


def read_demo_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a completed demo folder (spec, class mapping, counts); DatasetError if incomplete."""
    root = Path(root)
    if not (root / COMPLETE_MARKER).is_file() or not (root / MANIFEST).is_file():
        raise DatasetError(
            f"{root}: no complete demo data ({COMPLETE_MARKER} or {MANIFEST} missing); "
            f"generate it with `python tools/make_demo_data.py --out {root}`."
        )
    return json.loads((root / MANIFEST).read_text())


__all__ = [
    "COMPLETE_MARKER",
    "DEFAULT_LAYOUTS",
    "GENERATOR_VERSION",
    "LAYOUTS",
    "LAYOUT_DIRS",
    "MANIFEST",
    "VOC_CLASSES",
    "WRITERS",
    "DemoData",
    "DemoSpec",
    "LayoutWriter",
    "Scene",
    "SceneObject",
    "demo_class_hues",
    "demo_class_mapping",
    "demo_class_names",
    "demo_cub_class_dirs",
    "demo_synsets",
    "demo_voc_class_names",
    "make_captions",
    "make_demo_data",
    "read_demo_manifest",
    "render_scene",
]
