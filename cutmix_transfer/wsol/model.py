"""The model and CAM step: load a classifier checkpoint as a CAMNet (its head checked against the dataset) and
turn a batch of images into the GT-class score maps exactly as they are scored.

Score maps: the CAM of the GT class (fc weights on the last feature map, or a Grad-CAM-family method), resized
with bicubic interpolation to 224x224 and min-max normalised per image (``cam.normalize_cams``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch

from ..cam import class_activation_maps, grad_cams, normalize_cams
from ..datasets.wsol_data import NOMINAL_CLASSES, EvalData
from ..evalmodel import EvalClassifier, box_data_classes, load_eval_classifier
from .boxes import RESIZE_LENGTH

logger = logging.getLogger(__name__)

TRAIN_HINT = (
    "fine-tune it on the dataset first (tools/train_cls.py with a configs/cls/cub_*.py config for CUB), "
    "then evaluate that checkpoint"
)


def load_model(
    backbone: str | os.PathLike,
    dataset: str,
    data: EvalData,
    arch: str | None = None,
    trust: bool = False,
    wsol_form: bool = True,
    large_feature_map: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> EvalClassifier:
    """Load the checkpoint as a CAMNet with its own fc head, after checking its class count fits the dataset, and
    the statistics its inputs are normalised with (`mean` / `std`, else its meta's, else the dataset's).

    Returns evalmodel.load_eval_classifier's EvalClassifier (model in eval mode). A checkpoint without an fc head,
    or with another class count than the dataset declares (CUB 200, ImageNet 1000, the demo's own count), raises
    CheckpointError.
    """
    found = load_eval_classifier(
        backbone,
        dataset,
        hint=TRAIN_HINT,
        arch=arch,
        trust=trust,
        wsol_form=wsol_form,
        large_feature_map=large_feature_map,
        mean=mean,
        std=std,
        **box_data_classes(dataset, data),
    )
    k = int(found.loaded.num_classes)
    if data.num_classes is None and k != NOMINAL_CLASSES[dataset]:
        logger.warning(
            "%s has %d classes; %s normally has %d (the dataset declares no class list to check)",
            backbone,
            k,
            dataset,
            NOMINAL_CLASSES[dataset],
        )
    return found


def compute_scoremaps(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, method: str = "cam", size: int = RESIZE_LENGTH
) -> tuple[np.ndarray, np.ndarray]:
    """(B, 3, H, W) normalised images and (B,) GT labels -> (scoremaps (B, size, size) float32 in [0, 1],
    logits (B, K) float32 numpy). The scoremaps are the GT-class CAMs exactly as scored: bicubic resize to the
    224 scoring frame, then per-image min-max (``cam.normalize_cams``)."""
    size = (int(size), int(size))
    if method == "cam":
        cams, logits = class_activation_maps(model, images, labels)
        return normalize_cams(cams, size), logits.cpu().numpy()
    with torch.inference_mode():
        logits = model(images.to(next(model.parameters()).device)).float()
    maps = grad_cams(model, images, labels, method=method)
    return normalize_cams(maps, size), logits.cpu().numpy()
