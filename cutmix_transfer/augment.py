"""CutMix, Mixup and Cutout on a whole batch, with the CutMix paper's area-corrected lambda.

The four pretraining variants of Yun et al. (ICCV 2019) differ by one value, `mode`:
'none' (baseline), 'mixup', 'cutout', 'cutmix'. The math lives in small pure functions that are tested
directly; `BatchAugment` only draws the random numbers and applies them. Every op works on a (B, C, H, W)
tensor on any device without a Python loop over images. Boxes are x0 y0 x1 y1 in pixels, x1/y1 exclusive.

CutMix follows clovaai/CutMix-PyTorch train.py: lambda ~ Beta(beta, beta); box side = int(side * sqrt(1 - lambda))
with a uniform centre, clipped to the image; one box for the whole batch, the partner of image i is image
perm[i] of a random permutation; lambda is then corrected to the area actually kept; the loss is
lambda * CE(y_a) + (1 - lambda) * CE(y_b).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError

logger = logging.getLogger(__name__)

Mode = Literal["none", "mixup", "cutout", "cutmix"]
MODES: tuple[str, ...] = get_args(Mode)
#: The pretraining method name (results records, checkpoint meta) of each mode.
METHOD_OF_MODE: dict[str, str] = {"none": "baseline", "mixup": "mixup", "cutout": "cutout", "cutmix": "cutmix"}


# ----------------------------------------------------------------------------------------------- pure functions
def box_from_center(cx: int, cy: int, cut_w: int, cut_h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The box [cx - cut_w//2, cx + cut_w//2) x [cy - cut_h//2, cy + cut_h//2) clipped to the image, x0 y0 x1 y1.

    Same rounding as CutMix-PyTorch's rand_bbox (so an odd side loses one pixel before clipping).
    """
    x0 = min(max(cx - cut_w // 2, 0), width)
    y0 = min(max(cy - cut_h // 2, 0), height)
    x1 = min(max(cx + cut_w // 2, 0), width)
    y1 = min(max(cy + cut_h // 2, 0), height)
    return x0, y0, x1, y1


def cut_size(lam: float, width: int, height: int) -> tuple[int, int]:
    """The unclipped box side lengths (int(W*sqrt(1-lam)), int(H*sqrt(1-lam))) for a lambda in [0, 1]."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must lie in [0, 1], got {lam}")
    ratio = math.sqrt(1.0 - lam)
    return int(width * ratio), int(height * ratio)


def rand_bbox(lam: float, width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A CutMix box for `lam`: side sqrt(1-lam) of the image side, centre uniform over pixels, clipped; x0 y0 x1 y1."""
    cut_w, cut_h = cut_size(lam, width, height)
    cx = int(rng.integers(width))
    cy = int(rng.integers(height))
    return box_from_center(cx, cy, cut_w, cut_h, width, height)


def corrected_lambda(box_xyxy: tuple[int, int, int, int], width: int, height: int) -> float:
    """The weight of the original image's label after pasting `box`: kept pixels / all pixels.

    Computed as (W*H - pasted) / (W*H) in one division, so it equals the kept pixel fraction to the last bit.
    """
    x0, y0, x1, y1 = box_xyxy
    pasted = max(x1 - x0, 0) * max(y1 - y0, 0)
    return (width * height - pasted) / float(width * height)


def paste_box(
    images: torch.Tensor, perm: torch.Tensor, box_xyxy: tuple[int, int, int, int], inplace: bool = False
) -> torch.Tensor:
    """CutMix images: image i gets image perm[i]'s pixels inside the box. (B, C, H, W) -> same shape and dtype.

    The partners' box region is gathered into a new tensor before it is written, so `inplace=True` (no copy of
    the whole batch) gives the same result; it overwrites `images`.
    """
    x0, y0, x1, y1 = box_xyxy
    out = images if inplace else images.clone()
    out[:, :, y0:y1, x0:x1] = images[perm, :, y0:y1, x0:x1]
    return out


def mix_images(images: torch.Tensor, perm: torch.Tensor, lam: float) -> torch.Tensor:
    """Mixup images: lam * x + (1 - lam) * x[perm]. (B, C, H, W) floating point -> same shape and dtype."""
    if not images.is_floating_point():
        raise TypeError(f"mixup needs floating-point images, got {images.dtype}")
    return images.mul(lam).add_(images[perm], alpha=1.0 - lam)


def cutout_masks(centers_xy: torch.Tensor, size: int, height: int, width: int) -> torch.Tensor:
    """(B, 2) integer centres (x, y) -> (B, 1, H, W) bool masks, True inside each clipped size x size square.

    The square is [c - size//2, c - size//2 + size) per axis, clipped, as DeVries & Taylor's Cutout.
    """
    lo = centers_xy - size // 2  # (B, 2)
    hi = lo + size
    ys = torch.arange(height, device=centers_xy.device)
    xs = torch.arange(width, device=centers_xy.device)
    in_y = (ys[None, :] >= lo[:, 1:2]) & (ys[None, :] < hi[:, 1:2])  # (B, H)
    in_x = (xs[None, :] >= lo[:, 0:1]) & (xs[None, :] < hi[:, 0:1])  # (B, W)
    return (in_y[:, :, None] & in_x[:, None, :])[:, None]


def apply_cutout(images: torch.Tensor, masks: torch.Tensor, fill: float = 0.0, inplace: bool = False) -> torch.Tensor:
    """Set the masked pixels of every channel to `fill` (0 = the mean after normalisation)."""
    return images.masked_fill_(masks, fill) if inplace else images.masked_fill(masks, fill)


def mixed_cross_entropy(
    logits: torch.Tensor, target_a: torch.Tensor, target_b: torch.Tensor, lam: float | torch.Tensor
) -> torch.Tensor:
    """lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b), batch-mean; logits (B, K), targets (B,) int64."""
    loss_a = F.cross_entropy(logits, target_a)
    if isinstance(lam, float) and lam == 1.0:
        return loss_a
    return lam * loss_a + (1.0 - lam) * F.cross_entropy(logits, target_b)


# ----------------------------------------------------------------------------------------------- the batch op
@dataclass
class MixedBatch:
    """Images after augmentation and the two label sets their loss mixes: lam * CE(y_a) + (1 - lam) * CE(y_b)."""

    images: torch.Tensor  # (B, C, H, W)
    target_a: torch.Tensor  # (B,) int64: each image's own label
    target_b: torch.Tensor  # (B,) int64: the partner's label (== target_a when nothing was mixed)
    lam: float  # weight of target_a
    box_xyxy: tuple[int, int, int, int] | None = None  # the CutMix box, when one was pasted

    def loss(self, logits: torch.Tensor) -> torch.Tensor:
        """The mixed cross-entropy of `logits` (B, K) against this batch's targets."""
        return mixed_cross_entropy(logits, self.target_a, self.target_b, self.lam)


class BatchAugment:
    """One of the paper's four pretraining variants, applied to a whole batch with probability `prob`.

    mode 'none': identity; 'mixup': lam ~ Beta(alpha, alpha) blend with a permuted batch; 'cutout': one
    `cutout_size` square per image, zeroed (on normalised images: the mean); 'cutmix': one box per batch from a
    permuted batch with the area-corrected lambda. `beta` is the Beta parameter of both CutMix and Mixup.
    Random numbers come from one numpy Generator (seeded from `seed`, else from torch's initial seed), so a run
    is reproducible and independent of the device. `inplace=True` lets CutMix and Cutout overwrite the input
    batch instead of copying it (the data preprocessor owns its batch; Mixup always makes a new tensor).
    """

    def __init__(
        self,
        mode: Mode = "none",
        beta: float = 1.0,
        prob: float = 1.0,
        cutout_size: int = 16,
        seed: int | None = None,
        inplace: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"augment mode {mode!r} is unknown: choose one of {', '.join(MODES)}")
        if mode in ("mixup", "cutmix") and not beta > 0:
            raise ConfigError(f"{mode} needs beta > 0 (the Beta(beta, beta) parameter), got {beta}")
        if not 0.0 <= prob <= 1.0:
            raise ConfigError(f"augment prob must lie in [0, 1], got {prob}")
        if mode == "cutout" and (not isinstance(cutout_size, int) or cutout_size < 1):
            raise ConfigError(f"cutout_size must be a positive integer (pixels), got {cutout_size!r}")
        self.mode, self.beta, self.prob, self.cutout_size = mode, float(beta), float(prob), cutout_size
        self._seed, self.inplace = seed, bool(inplace)
        self._rng: np.random.Generator | None = None

    @property
    def method(self) -> str:
        """The pretraining method name: 'baseline', 'mixup', 'cutout' or 'cutmix'."""
        return METHOD_OF_MODE[self.mode]

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            seed = self._seed if self._seed is not None else torch.initial_seed() % (2**63)
            self._rng = np.random.default_rng(seed)
        return self._rng

    def reseed(self, seed: int) -> None:
        """Restart the random stream from `seed` (the trainers derive one per iteration: a resume replays it)."""
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"BatchAugment(mode={self.mode!r}, beta={self.beta}, prob={self.prob}, cutout_size={self.cutout_size})"

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> MixedBatch:
        """(B, C, H, W) images and (B,) int64 labels -> MixedBatch (same device and dtype as the input)."""
        if images.ndim != 4:
            raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must be (B,) = ({images.shape[0]},), got shape {tuple(labels.shape)}")
        unchanged = MixedBatch(images, labels, labels, 1.0)
        if self.mode == "none" or images.shape[0] == 0 or self.rng.random() >= self.prob:
            return unchanged
        b, _, h, w = images.shape
        if self.mode == "cutout":
            centers = np.stack([self.rng.integers(w, size=b), self.rng.integers(h, size=b)], axis=1)
            masks = cutout_masks(torch.from_numpy(centers).to(images.device), self.cutout_size, h, w)
            return MixedBatch(apply_cutout(images, masks, inplace=self.inplace), labels, labels, 1.0)
        lam = float(self.rng.beta(self.beta, self.beta))
        perm = torch.from_numpy(self.rng.permutation(b)).to(images.device)
        if self.mode == "mixup":
            return MixedBatch(mix_images(images, perm, lam), labels, labels[perm], lam)
        box = rand_bbox(lam, w, h, self.rng)
        mixed = paste_box(images, perm, box, inplace=self.inplace)
        return MixedBatch(mixed, labels, labels[perm], corrected_lambda(box, w, h), box)
