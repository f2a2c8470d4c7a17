"""The demo in CIFAR-100's python layout: cifar-100-python/{train,test,meta}, the pickles of the python version.

Each batch file is a pickled dict (protocol 2, bytes keys as in the original Python 2 files): b'batch_label',
b'filenames' (bytes), b'fine_labels' and b'coarse_labels' (lists of int) and b'data', an (N, 3072) uint8 array
whose row is the 32x32 image's R plane, then G, then B, each row-major. `meta` holds b'fine_label_names' (the
demo's class names, so the demo's fine labels are 0..num_classes-1) and b'coarse_label_names' (one superclass,
b'headed_blob'; every coarse label is 0). Images are 32x32 scenes with one object, larger than in the other
layouts (0.40-0.65 of the side, object-centred like CIFAR); `cifar_train_per_class` / `cifar_test_per_class`
images of each class, in a seeded shuffled order.

No boxes: CIFAR has none.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ...errors import ConfigError
from .files import write_file
from .scene import STREAMS, balanced_labels, demo_class_names, image_rng, render_scene

if TYPE_CHECKING:
    from . import DemoSpec

DIRNAME = "cifar-100-python"
SIDE = 32
OBJECT_SIZE = (0.40, 0.65)
COARSE_NAME = b"headed_blob"


def check(spec: DemoSpec) -> None:
    """CIFAR-100 has 100 fine classes: the demo writes at most that many."""
    if spec.num_classes > 100:
        raise ConfigError(
            f"num_classes={spec.num_classes}: the CIFAR-100 layout has at most 100 classes; "
            f"use --num-classes <= 100 or leave 'cifar100' out of --layouts."
        )


def render_batch(spec: DemoSpec, split: str, per_class: int) -> tuple[np.ndarray, list[int], list[bytes]]:
    """(data (N, 3072) uint8 R-G-B planes, fine labels, file names) of one split, from its own RNG stream."""
    stream = STREAMS[f"cifar_{split}"]
    labels = balanced_labels(spec.seed, stream, spec.num_classes, per_class)
    names = demo_class_names(spec.num_classes)
    data = np.zeros((len(labels), 3 * SIDE * SIDE), dtype=np.uint8)
    files = []
    for i, c in enumerate(labels):
        scene = render_scene(
            image_rng(spec.seed, stream, i + 1), SIDE, SIDE, [c], spec.num_classes, size_range=OBJECT_SIZE
        )
        data[i] = scene.image.transpose(2, 0, 1).reshape(-1)
        files.append(f"{names[c]}_headed_blob_s_{i + 1:06d}.png".encode())
    return data, labels, files


def write(root: Path, spec: DemoSpec, progress: bool) -> dict:
    """Write cifar-100-python/{train,test,meta} under `root` (the cifar-100-python folder); returns the counts."""
    counts = {}
    splits = (
        ("train", spec.cifar_train_per_class, b"training batch 1 of 1"),
        ("test", spec.cifar_test_per_class, b"testing batch 1 of 1"),
    )
    for split, per, batch_label in tqdm(splits, desc="CIFAR-100 layout", disable=not progress):
        data, labels, files = render_batch(spec, split, per)
        batch = {
            b"filenames": files,
            b"batch_label": batch_label,
            b"fine_labels": labels,
            b"coarse_labels": [0] * len(labels),
            b"data": data,
        }
        write_file(root / split, pickle.dumps(batch, protocol=2))
        counts[split] = len(labels)
    meta = {
        b"fine_label_names": [n.encode() for n in demo_class_names(spec.num_classes)],
        b"coarse_label_names": [COARSE_NAME],
    }
    write_file(root / "meta", pickle.dumps(meta, protocol=2))
    return counts
