"""The demo in the Kaggle ILSVRC (ImageNet localization) layout: val, and train when asked for.

Writes LOC_synset_mapping.txt, Data/CLS-LOC/{val,train/<synset>}/*.JPEG, Annotations/CLS-LOC/.../*.xml (PASCAL-style
XML, one object per instance; 20% of the images hold two instances of the class) and LOC_{val,train}_solution.csv
(`ImageId,PredictionString` with `synset xmin ymin xmax ymax` per box, rows not sorted by image id, like the real
file).

Box convention: in both the XML and the CSV, 0-based inclusive pixel indices (xmin = x0, xmax = x1 - 1 of the
scene's exclusive box), like the real annotations, whose boxes reach at most width - 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from ...io import atomic_write_text
from .files import encode_image, pascal_xml, write_file
from .scene import STREAMS, balanced_labels, demo_class_names, demo_synsets, image_rng, jitter_size, render_scene

if TYPE_CHECKING:
    from . import DemoSpec

DIRNAME = "ILSVRC"


def write(root: Path, spec: DemoSpec, progress: bool) -> dict:
    """Write the ILSVRC layout under `root` (the ILSVRC folder); returns the image counts per split."""
    n, syn = spec.num_classes, demo_synsets(spec.num_classes)
    names = demo_class_names(n)
    atomic_write_text(
        root / "LOC_synset_mapping.txt", "".join(f"{s} {nm} headed blob, {nm} square\n" for s, nm in zip(syn, names))
    )
    counts = {}
    for split, per in (("val", spec.imagenet_val_per_class), ("train", spec.imagenet_train_per_class)):
        if per <= 0:
            continue
        stream = STREAMS[f"imagenet_{split}"]
        labels = balanced_labels(spec.seed, stream, n, per)
        rows, per_syn = [], [0] * n
        for i, c in enumerate(tqdm(labels, desc=f"ILSVRC {split}", disable=not progress), start=1):
            rng = image_rng(spec.seed, stream, i)
            w, h = jitter_size(rng, spec.image_size, spec.size_jitter)
            # ImageNet val sometimes shows several instances of the class: 20% of images hold two.
            k = 2 if rng.random() < 0.2 else 1
            scene = render_scene(rng, w, h, [c] * k, n, size_range=(0.28, 0.46) if k == 1 else (0.22, 0.34))
            if split == "val":
                stem, sub = f"ILSVRC2012_val_{i:08d}", "val"
            else:
                per_syn[c] += 1
                stem, sub = f"{syn[c]}_{per_syn[c]}", f"train/{syn[c]}"
            write_file(root / "Data" / "CLS-LOC" / sub / f"{stem}.JPEG", encode_image(scene.image, ".JPEG"))
            boxes = [[int(b[0]), int(b[1]), int(b[2]) - 1, int(b[3]) - 1] for b in (o.box_xyxy for o in scene.objects)]
            xml = pascal_xml(
                split if split == "val" else syn[c], stem, w, h, [(syn[c], bx, 0) for bx in boxes], "ILSVRC_2012"
            )
            write_file(root / "Annotations" / "CLS-LOC" / sub / f"{stem}.xml", xml.encode())
            rows.append((stem, " ".join(f"{syn[c]} {b[0]} {b[1]} {b[2]} {b[3]}" for b in boxes)))
        # the real CSVs are not sorted by image id
        image_rng(spec.seed, STREAMS["order"], stream + 100).shuffle(rows)
        atomic_write_text(
            root / f"LOC_{split}_solution.csv", "ImageId,PredictionString\n" + "".join(f"{a},{b} \n" for a, b in rows)
        )
        counts[split] = len(labels)
    return counts
