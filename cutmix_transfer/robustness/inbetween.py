"""In-between-class samples (CutMix paper, Figure 5b; Appendix E.1): two images of different classes, mixed.

`lam` is always the paper's lambda, the share of the FIRST image x_A (a) in the sample:
- Mixup:  x = lam * a + (1 - lam) * b (E.1's formula), lam on the --mixup-ratios grid;
- CutMix: a (x_A, whose border remains) with the centred square of side s replaced by b's (x_B's) pixels at the
  same place; lam = 1 - s^2 / S^2 (a's remaining area), s on the --cutmix-sides grid (224 frame, scaled like
  the occlusion holes).
For each sample the prediction counts as 'either' when it is a's or b's class, and as 'dominant' when it is the
class of the image with the larger share (a for lam > 0.5, b for lam < 0.5; at lam = 0.5 both shares are equal
and either class counts). 'neither' = 1 - 'either' is the quantity the paper's Figure 5b plots.
(Records before results.RECORD_VERSION 2 hold lambda as the share of the second image: 1 - this lambda.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import ConfigError, DatasetError
from .occlusion import centered_span, square_side

DEFAULT_MIXUP_RATIOS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))  # 0, 0.1, ..., 1


def check_ratios(ratios: Sequence[float]) -> list[float]:
    """Mixup ratios as floats; ConfigError unless each is in [0, 1] and none repeats."""
    out = []
    for r in ratios:
        v = float(r)
        if not math.isfinite(v) or not 0.0 <= v <= 1.0:
            raise ConfigError(
                f"--mixup-ratios {r}: give lambda, the share of the first image x_A, values in [0, 1], "
                f"e.g. --mixup-ratios 0 0.25 0.5 0.75 1"
            )
        out.append(v)
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"--mixup-ratios {' '.join(map(str, ratios))}: give at least one ratio, each once")
    return out


def draw_pairs(labels: Sequence[int], num_pairs: int, seed: int | Sequence[int]) -> np.ndarray:
    """(num_pairs, 2) positions into `labels`, drawn uniformly with replacement from `seed` (numpy's
    default_rng), the two of a pair always of different classes (a second of the first's class is drawn again)."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(np.unique(labels)) < 2:
        raise DatasetError(
            f"in-between-class samples need images of at least two classes; the evaluated images "
            f"hold {len(np.unique(labels))} class(es): use more images (--max-images) or another split"
        )
    rng = np.random.default_rng(seed)
    n = len(labels)
    first = rng.integers(0, n, size=num_pairs)
    second = rng.integers(0, n, size=num_pairs)
    same = labels[first] == labels[second]
    while same.any():
        second[same] = rng.integers(0, n, size=int(same.sum()))
        same = labels[first] == labels[second]
    return np.stack([first, second], axis=1)


def mixup_images(a: torch.Tensor, b: torch.Tensor, lam: float) -> torch.Tensor:
    """lam * a + (1 - lam) * b: a Mixup blend with the share `lam` of a. Computed as torch.lerp(a, b, 1 - lam),
    the call record version 1 made at its ratio (the share of b) 1 - lam, so a grid whose complements are exact
    (0, 0.25, 0.5, ...) gives the same images, bit for bit, as before lambda's direction flipped."""
    lam = float(lam)
    return torch.lerp(a, b, 1.0 - lam) if 0.0 < lam < 1.0 else (a.clone() if lam >= 1.0 else b.clone())


def cutmix_images(a: torch.Tensor, b: torch.Tensor, side: int) -> torch.Tensor:
    """A copy of `a` whose centred square of `side` pixels comes from `b` (same place); square images."""
    s0, s1 = centered_span(square_side(a), side)
    out = a.clone()
    out[..., s0:s1, s0:s1] = b[..., s0:s1, s0:s1]
    return out


def cutmix_ratio(side: int, size: int) -> float:
    """lambda of a CutMix sample, the share of a (x_A): 1 - pasted area / image area = 1 - side^2 / size^2."""
    return 1.0 - float(side * side) / float(size * size)


def hit_rates(
    preds: np.ndarray, labels_a: np.ndarray, labels_b: np.ndarray, ratios: Sequence[float]
) -> dict[str, list[float]]:
    """Per lambda (`ratios`, the share of a; columns of `preds` (P, T)): percent of samples predicted as a's or b's
    class ('either'), as the class with the larger share ('dominant': a above 0.5, b below, either one at 0.5)
    and as neither class ('neither')."""
    preds = np.asarray(preds).reshape(len(labels_a), -1)
    la = np.asarray(labels_a)[:, None]
    lb = np.asarray(labels_b)[:, None]
    is_a, is_b = preds == la, preds == lb
    either = is_a | is_b
    lam = np.asarray(ratios, dtype=np.float64)[None, :]
    dominant = np.where(lam > 0.5, is_a, np.where(lam < 0.5, is_b, either))
    n = max(1, len(preds))
    return {
        "either": (100.0 * either.sum(0) / n).tolist(),
        "dominant": (100.0 * dominant.sum(0) / n).tolist(),
        "neither": (100.0 * (~either).sum(0) / n).tolist(),
    }
