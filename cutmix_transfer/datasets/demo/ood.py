"""The demo's out-of-distribution folders, in the layout of ODIN's release: ood/<set>/test/<index>.jpg.

Three sets of `ood_images_per_set` JPEG images each, none holding a demo object (no headed blob), for
tools/ood_eval.py against the demo's CIFAR-100 layout:
- `Backgrounds`: 32x32 scenes without objects (the demo's cluttered background alone), like ODIN's crop sets;
- `Backgrounds_resize`: background-only scenes of about 96 px (+-20% per side) shrunk to 32x32 with
  cv2.INTER_AREA, like ODIN's resize sets;
- `Crops_48`: 48x48 crops of 96x96 background-only scenes, written at 48x48, so the evaluator's resizing of
  images that are not 32x32 is exercised.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from .files import encode_image, write_file
from .scene import STREAMS, image_rng, jitter_size, render_scene

if TYPE_CHECKING:
    from . import DemoSpec

DIRNAME = "ood"
SETS = ("Backgrounds", "Backgrounds_resize", "Crops_48")
SIDE = 32
CROP = 48
LARGE = 96


def render_ood_image(name: str, spec: DemoSpec, index: int) -> np.ndarray:
    """Image `index` (1-based) of OOD set `name`: (H, W, 3) uint8 RGB, from its own RNG."""
    rng = image_rng(spec.seed, STREAMS[f"ood_{name.lower()}"], index)
    if name == "Backgrounds":
        return render_scene(rng, SIDE, SIDE, [], spec.num_classes).image
    if name == "Backgrounds_resize":
        w, h = jitter_size(rng, LARGE, 0.2)
        return cv2.resize(
            render_scene(rng, w, h, [], spec.num_classes).image, (SIDE, SIDE), interpolation=cv2.INTER_AREA
        )
    big = render_scene(rng, LARGE, LARGE, [], spec.num_classes).image
    x0, y0 = (int(v) for v in rng.integers(0, LARGE - CROP + 1, size=2))
    return np.ascontiguousarray(big[y0 : y0 + CROP, x0 : x0 + CROP])


def write(root: Path, spec: DemoSpec, progress: bool) -> dict:
    """Write ood/<set>/test/*.jpg for every set under `root` (the ood folder); returns the image count per set."""
    counts = {}
    for name in SETS:
        for i in tqdm(range(1, spec.ood_images_per_set + 1), desc=f"OOD {name}", disable=not progress):
            write_file(root / name / "test" / f"{i:05d}.jpg", encode_image(render_ood_image(name, spec, i), ".jpg"))
        counts[name] = spec.ood_images_per_set
    return counts
