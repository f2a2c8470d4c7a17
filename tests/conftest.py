"""Shared fixtures: a tiny demo dataset in every real layout, generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutmix_transfer.datasets.demo import make_demo_data

# Settings of the shared tiny demo (also importable by tests that need the numbers).
DEMO_KWARGS = dict(
    seed=0,
    image_size=64,
    per_class=4,
    num_classes=4,
    test_per_class=2,
    imagenet_val_per_class=2,
    det_image_size=96,
    voc_trainval_images=8,
    voc_test_images=4,
    coco_train_images=8,
    coco_val_images=8,
    progress=False,
)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root Path holding CUB_200_2011/, ILSVRC/, VOCdevkit/{VOC2007,VOC2012}/ and coco/ (tiny: 64 px CUB
    images, 4 classes -> VOC names aeroplane/bicycle/bird/boat; about half a second to generate)."""
    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root, **DEMO_KWARGS)
    return root
