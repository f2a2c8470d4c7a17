"""The curves of one decoded batch: predictions at every grid point, and the summaries the record holds.

Every function takes the batch once, decoded, in [0, 1] pixels, and runs one forward per grid point on images
built from it in memory (a clone and a slice write), so the data pipeline is paid once per batch whatever the
grid. Predictions are (B, T) int64 class indices, T the grid's length; summaries are percentages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from .inbetween import cutmix_images, mixup_images
from .occlusion import Mode, occlude


def predict(model: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """(B,) top-1 classes of `model` (a PixelClassifier) on [0, 1] pixels, without autograd."""
    with torch.inference_mode():
        return model(pixels).argmax(dim=1)


def predict_columns(model: nn.Module, batches: Iterable[torch.Tensor], n: int) -> torch.Tensor:
    """(n, T) int64: `predict` on each of the T variants of an n-image batch, one column each ((n, 0) for none)."""
    cols = [predict(model, x) for x in batches]
    return torch.stack(cols, dim=1) if cols else torch.zeros(n, 0, dtype=torch.int64)


def occlusion_predictions(
    model: nn.Module, pixels: torch.Tensor, sides_px: Sequence[int], mode: Mode, fill: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """(B, T) predictions with the centred square of each side (pixels of the input) occluded by `mode`, the
    occluded pixels set to `fill` (occlusion.fill_value)."""
    return predict_columns(model, (occlude(pixels, int(s), mode, fill) for s in sides_px), len(pixels))


def mixup_predictions(model: nn.Module, a: torch.Tensor, b: torch.Tensor, ratios: Sequence[float]) -> torch.Tensor:
    """(B, T) predictions on Mixup blends lam a + (1 - lam) b (lam the share of a), one column per ratio."""
    return predict_columns(model, (mixup_images(a, b, float(r)) for r in ratios), len(a))


def cutmix_predictions(model: nn.Module, a: torch.Tensor, b: torch.Tensor, sides_px: Sequence[int]) -> torch.Tensor:
    """(B, T) predictions on a with b's centred square of each side pasted in, one column per side."""
    return predict_columns(model, (cutmix_images(a, b, int(s)) for s in sides_px), len(a))


def top1_accuracy(preds: np.ndarray, labels: np.ndarray) -> list[float]:
    """Percent of rows whose prediction equals the label, per column of `preds` (N, T) (or (N,) -> one value)."""
    preds = np.asarray(preds)
    labels = np.asarray(labels)
    if preds.ndim == 1:
        preds = preds[:, None]
    n = max(1, len(labels))
    return (100.0 * (preds == labels[:, None]).sum(axis=0) / n).tolist()


def top1_error(preds: np.ndarray, labels: np.ndarray) -> list[float]:
    """100 - top1_accuracy, per column."""
    return [100.0 - a for a in top1_accuracy(preds, labels)]
