"""The demo in wsolevaluation's OpenImages30k layout (masks, no boxes; scored by PxAP). Written only on request.

Writes metadata/OpenImages/{train,val,test}/ with image_ids.txt (``<split>/<class dir>/<hex id>.jpg``),
class_labels.txt (``<image_id>,<label>``), image_sizes.txt and, for val and test, localization.txt: one line per
instance mask, ``<image_id>,<mask path>,<ignore path>``, the ignore file named on an image's first line only.
Images, masks (0/255 PNG, ``<split>/<class dir>/<id>_m<class dir>_<k>.png``) and ignore files
(``<split>/ignore/<class dir>/<id>_ignore.png``) lie under the layout root at those relative paths.

From the scene: each image holds one or two annotated instances of its class (one mask each) and, on two images of
three, one more instance left unannotated whose bounding box is the ignore region (as OpenImages ignores regions
it did not annotate); the third image has no ignore file (its field is empty, as in custom data).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ...io import atomic_write_text
from .files import encode_image, write_file
from .scene import STREAMS, balanced_labels, image_rng, jitter_size, render_scene

if TYPE_CHECKING:
    from . import DemoSpec

DIRNAME = "OpenImages"
SPLITS = ("train", "val", "test")
MASK_SPLITS = ("val", "test")


def class_dir(label: int) -> str:
    """The folder of a class, shaped like an OpenImages MID without '/m/' (e.g. 0d0003z)."""
    return f"0d{label:04d}z"


def write(root: Path, spec: DemoSpec, progress: bool) -> dict:
    """Write the OpenImages layout under `root` (the OpenImages folder); returns the image counts per split."""
    n = spec.num_classes
    counts = {}
    for split in SPLITS:
        stream = STREAMS[f"openimages_{split}"]
        labels = balanced_labels(spec.seed, stream, n, spec.openimages_per_class)
        ids, label_lines, size_lines, loc_lines = [], [], [], []
        for i, c in enumerate(tqdm(labels, desc=f"OpenImages {split}", disable=not progress)):
            rng = image_rng(spec.seed, stream, i)
            w, h = jitter_size(rng, spec.image_size, spec.size_jitter)
            annotated = 1 + int(rng.random() < 0.3)
            with_ignore = i % 3 != 2
            scene = render_scene(rng, w, h, [c] * (annotated + int(with_ignore)), n, size_range=(0.22, 0.36))
            cdir = class_dir(c)
            stem = rng.bytes(8).hex()
            image_id = f"{split}/{cdir}/{stem}.jpg"
            write_file(root / image_id, encode_image(scene.image, ".jpg"))
            ids.append(image_id)
            label_lines.append(f"{image_id},{c}")
            size_lines.append(f"{image_id},{w},{h}")
            if split not in MASK_SPLITS:
                continue
            instances = scene.objects[:annotated] or scene.objects[:1]
            unannotated = scene.objects[annotated:] if with_ignore else []
            ignore_rel = ""
            if unannotated:
                ignore = np.zeros((h, w), np.uint8)
                x0, y0, x1, y1 = (int(v) for v in unannotated[0].box_xyxy)
                ignore[y0:y1, x0:x1] = 255
                ignore_rel = f"{split}/ignore/{cdir}/{stem}_ignore.png"
                write_file(root / ignore_rel, encode_image(ignore, ".png"))
            for k, obj in enumerate(instances):
                mask_rel = f"{split}/{cdir}/{stem}_m{cdir}_{k}.png"
                write_file(root / mask_rel, encode_image(obj.mask.astype(np.uint8) * 255, ".png"))
                loc_lines.append(f"{image_id},{mask_rel},{ignore_rel if k == 0 else ''}")
        meta = root / "metadata" / "OpenImages" / split
        atomic_write_text(meta / "image_ids.txt", "".join(f"{x}\n" for x in ids))
        atomic_write_text(meta / "class_labels.txt", "".join(f"{x}\n" for x in label_lines))
        atomic_write_text(meta / "image_sizes.txt", "".join(f"{x}\n" for x in size_lines))
        if split in MASK_SPLITS:
            atomic_write_text(meta / "localization.txt", "".join(f"{x}\n" for x in loc_lines))
        counts[split] = len(ids)
    atomic_write_text(
        root / "README",
        "cutmix_transfer demo data in wsolevaluation's OpenImages30k layout (generated, not the real dataset).\n",
    )
    return counts
