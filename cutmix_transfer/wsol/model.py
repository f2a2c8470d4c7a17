"""The model and CAM step: load a classifier checkpoint as a CAMNet (its head checked against the dataset) and
turn a batch of images into the GT-class score maps exactly as they are scored.

Score maps: the CAM of the GT class (fc weights on the last feature map, or a Grad-CAM-family method), resized
with bicubic interpolation to 224x224 and min-max normalised per image (``cam.normalize_cams``).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

from ..backbones import load_classifier
from ..cam import class_activation_maps, grad_cams, normalize_cams
from ..checkpoints import LoadedBackbone
from ..datasets.wsol_data import NOMINAL_CLASSES, EvalData
from .boxes import RESIZE_LENGTH

logger = logging.getLogger(__name__)

TRAIN_HINT = (
    "fine-tune it on the dataset first (tools/train_cls.py with a configs/cls/cub_*.py config for CUB), "
    "then evaluate that checkpoint"
)


def load_eval_classifier(
    backbone: str | os.PathLike,
    dataset: str,
    data: EvalData,
    hint: str,
    arch: str | None = None,
    trust: bool = False,
    wsol_form: bool | None = None,
    large_feature_map: bool | None = None,
) -> tuple[torch.nn.Module, LoadedBackbone, dict]:
    """The checkpoint as the classifier of `data` (a box dataset's split: the WSOL and robustness evaluators'),
    its head checked against the data's class count and labels (CheckpointError with `hint` otherwise):
    backbones.load_classifier's (model in eval mode, LoadedBackbone, form)."""
    return load_classifier(
        backbone,
        f"the {dataset} data at {data.data_root}",
        hint,
        num_classes=data.num_classes,
        max_label=max(int(s.label) for s in data.samples),
        arch=arch,
        trust=trust,
        wsol=wsol_form,
        large_feature_map=large_feature_map,
    )


def load_model(
    backbone: str | os.PathLike,
    dataset: str,
    data: EvalData,
    arch: str | None = None,
    trust: bool = False,
    wsol_form: bool = True,
    large_feature_map: bool = False,
) -> tuple[torch.nn.Module, LoadedBackbone]:
    """Load the checkpoint as a CAMNet with its own fc head, after checking its class count fits the dataset.

    Returns (model in eval mode, LoadedBackbone). A checkpoint without an fc head, or with another class count
    than the dataset declares (CUB 200, ImageNet 1000, the demo's own count), raises CheckpointError.
    """
    model, loaded, _ = load_eval_classifier(
        backbone, dataset, data, TRAIN_HINT, arch, trust, wsol_form, large_feature_map
    )
    k = int(loaded.num_classes)
    if data.num_classes is None and k != NOMINAL_CLASSES[dataset]:
        logger.warning(
            "%s has %d classes; %s normally has %d (the dataset declares no class list to check)",
            backbone,
            k,
            dataset,
            NOMINAL_CLASSES[dataset],
        )
    return model, loaded


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
