"""In-between-class samples (CutMix paper, Figure 5b): two images of different classes, mixed.

`lam` is always the share of the SECOND image b in the sample:
- Mixup:  (1 - lam) * a + lam * b, lam on the --mixup-ratios grid;
- CutMix: a with the centred square of side s replaced by b's pixels at the same place; lam = s^2 / S^2 (the
  pasted area), s on the --cutmix-sides grid (224 frame, scaled like the occlusion holes).
For each sample the prediction counts as 'either' when it is a's or b's class, and as 'dominant' when it is the
class of the image with the larger share (a for lam < 0.5, b for lam > 0.5; at lam = 0.5 both shares are equal
and either class counts). 'neither' = 1 - 'either' is the quantity the paper's Figure 5b plots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import ConfigError, DatasetError
from .occlusion import centered_span

DEFAULT_MIXUP_RATIOS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))  # 0, 0.1, ..., 1


def check_ratios(ratios: Sequence[float]) -> list[float]:
    """Mixup ratios as floats; ConfigError unless each is in [0, 1] and none repeats."""
    out = []
    for r in ratios:
        v = float(r)
        if not math.isfinite(v) or not 0.0 <= v <= 1.0:
            raise ConfigError(
                f"--mixup-ratios {r}: give the share of the second image, values in [0, 1], "
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
    """(1 - lam) * a + lam * b: a Mixup blend with the share `lam` of b."""
    return torch.lerp(a, b, float(lam)) if 0.0 < lam < 1.0 else (a.clone() if lam <= 0.0 else b.clone())


def cutmix_images(a: torch.Tensor, b: torch.Tensor, side: int) -> torch.Tensor:
    """A copy of `a` whose centred square of `side` pixels comes from `b` (same place)."""
    s0, s1 = centered_span(a.shape[-1], side)
    out = a.clone()
    out[..., s0:s1, s0:s1] = b[..., s0:s1, s0:s1]
    return out


def cutmix_ratio(side: int, size: int) -> float:
    """The share of b in a CutMix sample: pasted area / image area = side^2 / size^2."""
    return float(side * side) / float(size * size)


def hit_rates(
    preds: np.ndarray, labels_a: np.ndarray, labels_b: np.ndarray, ratios: Sequence[float]
) -> dict[str, list[float]]:
    """Per ratio (columns of `preds` (P, T)): percent of samples predicted as a's or b's class ('either'), as the
    class with the larger share ('dominant', either one at 0.5) and as neither class ('neither')."""
    preds = np.asarray(preds).reshape(len(labels_a), -1)
    la = np.asarray(labels_a)[:, None]
    lb = np.asarray(labels_b)[:, None]
    is_a, is_b = preds == la, preds == lb
    either = is_a | is_b
    lam = np.asarray(ratios, dtype=np.float64)[None, :]
    dominant = np.where(lam < 0.5, is_a, np.where(lam > 0.5, is_b, either))
    n = max(1, len(preds))
    return {
        "either": (100.0 * either.sum(0) / n).tolist(),
        "dominant": (100.0 * dominant.sum(0) / n).tolist(),
        "neither": (100.0 * (~either).sum(0) / n).tolist(),
    }
