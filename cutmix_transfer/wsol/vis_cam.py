"""vis_cam: CAM overlays for arbitrary images with a classifier checkpoint (tools/vis_cam.py's application).

Each image is loaded as in evaluation (224x224, or --image-size; normalised with --mean / --std, else the
checkpoint meta's statistics, else ImageNet's as wsolevaluation), the CAM of the chosen class (default: top-1) is
computed as the evaluator scores it, then drawn over the image at its own size next to the plain image.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ..backbones import build_from_checkpoint
from ..cam import check_method
from ..datasets.wsol_data import read_class_names
from ..errors import CheckpointError, ConfigError, DatasetError
from ..normalization import resolve_normalization
from ..runtime import check_input_size, resolve_device, seed_everything
from .inputs import load_image_224
from .model import compute_scoremaps
from .visualize import colorbar, compose_overlay, new_figure, save_png

logger = logging.getLogger(__name__)


@dataclass
class VisCamConfig:
    """Options of tools/vis_cam.py: which checkpoint, images, class (None: top-1), CAM method, output folder."""

    backbone: str | os.PathLike
    images: Sequence[str | os.PathLike]
    class_index: int | None = None
    class_names: str | os.PathLike | None = None
    arch: str | None = None
    cam: str = "cam"
    out: str | os.PathLike = "work_dirs/vis_cam"
    device: str = "auto"
    seed: int = 0
    trust_checkpoint: bool = False
    wsol_form: bool = True
    alpha: float = 0.5
    input_size: int = 224
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None


@dataclass(frozen=True)
class CamView:
    """One image's overlay as drawn: the PNG written, the image's (width, height), the class probabilities (float64
    softmax), the top-1 class, the class whose CAM is drawn and its label ('12 (name)' or '12'), the top-5 (class,
    probability) pairs, the CAM at the image's own size in [0, 1] and the blended overlay (uint8 RGB, same size)."""

    path: Path
    image: Path
    size_wh: tuple[int, int]
    probs: np.ndarray
    top1: int
    cls: int
    label: str
    top5: list[tuple[int, float]]
    smap: np.ndarray
    overlay: np.ndarray


def _name(names: list[str] | None, k: int) -> str:
    """'12 (name)' when a name exists, else '12'."""
    return f"{k} ({names[k]})" if names and 0 <= k < len(names) else str(k)


def vis_cam(cfg: VisCamConfig) -> list[CamView]:
    """For each image: CAM of the chosen class (or the top-1 class) over the image at its own size, next to the
    plain image, titled with the class, its probability and the top-5; writes <out>/<n>_<stem>_cam.png and returns
    what each figure shows (CamView)."""
    check_method(cfg.cam)
    if not cfg.images:
        raise ConfigError("no images given: pass one or more image paths after the options")
    check_input_size(cfg.input_size)
    resolve_normalization(None, "imagenet", cfg.mean, cfg.std)  # a bad --mean / --std fails before any work
    if not 0.0 <= cfg.alpha <= 1.0:
        raise ConfigError(f"--alpha {cfg.alpha}: use a value in [0, 1]")
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    if not Path(cfg.backbone).is_file():
        raise CheckpointError(f"checkpoint not found: {cfg.backbone}; pass --backbone a classifier checkpoint")
    names = None
    if cfg.class_names is not None:
        names = read_class_names(cfg.class_names)
        if names is None:
            raise DatasetError(
                f"class-names file not found: {cfg.class_names}; pass CUB classes.txt, ImageNet "
                f"LOC_synset_mapping.txt or a file with one name per line"
            )
    model, loaded, _ = build_from_checkpoint(
        cfg.backbone, arch=cfg.arch, wsol=cfg.wsol_form, trust=cfg.trust_checkpoint, head="require"
    )
    model = model.to(device).eval()
    norm = resolve_normalization(loaded.meta, "imagenet", cfg.mean, cfg.std)
    logger.info("inputs normalised with mean %s, std %s (%s)", norm.mean, norm.std, norm.source)
    k = model.num_classes
    if names is not None and len(names) != k:
        logger.warning("%d class names for a %d-class checkpoint; names are shown where they exist", len(names), k)
    if cfg.class_index is not None and not 0 <= cfg.class_index < k:
        raise ConfigError(f"--class {cfg.class_index}: {cfg.backbone} has {k} classes, use 0..{k - 1}")
    out = Path(cfg.out)
    written = []
    for j, image_path in enumerate(cfg.images):
        image_path = Path(image_path)
        if not image_path.is_file():
            raise DatasetError(f"image not found: {image_path}")
        try:
            tensor, _, size_wh = load_image_224(image_path, input_size=cfg.input_size, mean=norm.mean, std=norm.std)
            with Image.open(image_path) as im:
                original = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except Exception as e:  # noqa: BLE001 -- any decoder failure
            raise DatasetError(
                f"unreadable image: {image_path} ({type(e).__name__}: {e}); pass an image file PIL can open"
            ) from None
        with torch.inference_mode():
            logits = model(tensor[None].to(device)).float().cpu()
        probs = torch.softmax(logits.double(), dim=1)[0].numpy()
        top1 = int(probs.argmax())
        cls = top1 if cfg.class_index is None else int(cfg.class_index)
        smap224, _ = compute_scoremaps(model, tensor[None], torch.tensor([cls]), cfg.cam)
        w, h = size_wh
        smap = np.clip(cv2.resize(smap224[0], (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        overlay = compose_overlay(original, smap, None, None, scale=1, alpha=cfg.alpha)
        top5 = [(int(c), float(probs[c])) for c in np.argsort(-probs, kind="stable")[:5]]
        fig = new_figure(8.0, 4.4)
        ax0, ax1 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        ax0.imshow(original)
        ax0.set_title(f"{image_path.name} ({w}x{h})", fontsize=8)
        ax1.imshow(overlay)
        which = "top-1" if cfg.class_index is None else "requested"
        label = _name(names, cls)
        ax1.set_title(f"{cfg.cam.upper()} of class {label} ({which}), p={probs[cls]:.3f}", fontsize=8)
        for ax in (ax0, ax1):
            ax.axis("off")
        colorbar(fig, [ax0, ax1])
        fig.suptitle(
            f"{Path(cfg.backbone).name} ({loaded.arch}); top-5: "
            + ", ".join(f"{_name(names, c)} {p:.2f}" for c, p in top5),
            fontsize=7,
        )
        path = save_png(fig, out / f"{j:03d}_{image_path.stem}_cam.png")
        written.append(CamView(path, image_path, (w, h), probs, top1, cls, label, top5, smap, overlay))
        logger.info("%s: class %s p=%.3f (top-1 %s) -> %s", image_path, label, probs[cls], _name(names, top1), path)
    return written
