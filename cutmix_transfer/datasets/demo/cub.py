"""The demo in the raw CUB-200-2011 layout, with the separate segmentations download.

Writes images/<class dir>/*.jpg, segmentations/<class dir>/*.png (0/255, the body mask), classes.txt, images.txt,
image_class_labels.txt, train_test_split.txt (train and test interleaved within a class, like CUB's own order)
and bounding_boxes.txt.

Box convention: bounding_boxes.txt holds `x y w h` (floats written with one decimal) with the body spanning pixel
columns x..x+w-1 and rows y..y+h-1, so wsolevaluation's x0, y0, x0 + w, y0 + h gives back the exclusive box
x0 y0 x1 y1 of the scene.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ...io import atomic_write_text
from .files import encode_image, write_file
from .scene import STREAMS, demo_cub_class_dirs, image_rng, render_scene

if TYPE_CHECKING:
    from . import DemoSpec

DIRNAME = "CUB_200_2011"


def write(root: Path, spec: DemoSpec, progress: bool) -> dict:
    """Write the CUB layout under `root` (the CUB_200_2011 folder); returns the image counts per split."""
    n, dirs = spec.num_classes, demo_cub_class_dirs(spec.num_classes)
    images, labels_lines, split_lines, box_lines = [], [], [], []
    counters = [0] * n
    items = [(c, 1) for c in range(n) for _ in range(spec.per_class)]
    items += [(c, 0) for c in range(n) for _ in range(spec.test_per_class)]
    # interleave train and test within a class, like CUB's own image order
    items.sort(key=lambda t: t[0])
    order_rng = image_rng(spec.seed, STREAMS["order"], STREAMS["cub"])
    for c in range(n):
        idx = [i for i, t in enumerate(items) if t[0] == c]
        flags = [items[i][1] for i in idx]
        order_rng.shuffle(flags)
        for i, f in zip(idx, flags):
            items[i] = (c, f)
    for i, (c, is_train) in enumerate(tqdm(items, desc="CUB_200_2011", disable=not progress), start=1):
        rng = image_rng(spec.seed, STREAMS["cub"], i)
        scene = render_scene(rng, spec.image_size, spec.image_size, [c], n)
        obj = scene.objects[0]
        counters[c] += 1
        stem = f"{dirs[c].split('.', 1)[1]}_{counters[c]:04d}_{i}"
        rel = f"{dirs[c]}/{stem}.jpg"
        write_file(root / "images" / rel, encode_image(scene.image, ".jpg"))
        write_file(
            root / "segmentations" / dirs[c] / f"{stem}.png", encode_image(obj.mask.astype(np.uint8) * 255, ".png")
        )
        x0, y0, x1, y1 = obj.box_xyxy.tolist()
        images.append(f"{i} {rel}")
        labels_lines.append(f"{i} {c + 1}")
        split_lines.append(f"{i} {is_train}")
        box_lines.append(f"{i} {x0:.1f} {y0:.1f} {x1 - x0:.1f} {y1 - y0:.1f}")
    atomic_write_text(root / "images.txt", "\n".join(images) + "\n")
    atomic_write_text(root / "classes.txt", "".join(f"{k + 1} {d}\n" for k, d in enumerate(dirs)))
    atomic_write_text(root / "image_class_labels.txt", "\n".join(labels_lines) + "\n")
    atomic_write_text(root / "train_test_split.txt", "\n".join(split_lines) + "\n")
    atomic_write_text(root / "bounding_boxes.txt", "\n".join(box_lines) + "\n")
    atomic_write_text(
        root / "README",
        "cutmix_transfer demo data in the CUB-200-2011 layout (generated, "
        "not the real dataset). segmentations/ follows the separate CUB segmentation download.\n",
    )
    return {"train": n * spec.per_class, "test": n * spec.test_per_class}
