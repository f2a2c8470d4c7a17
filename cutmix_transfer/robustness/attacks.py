"""FGSM (Goodfellow et al., 2015) on pixels in [0, 1]: the white-box attack of the CutMix paper's Table 11.

The network sees normalised images, the attack acts on the pixels before normalisation: `PixelClassifier` puts
the ImageNet mean/std inside the model, so the gradient is taken with respect to the [0, 1] pixels and the
perturbed image is clipped to [0, 1] (a valid image) before it is classified.

    x_adv = clip(x + eps * sign(grad_x CE(f(x), y)), 0, 1),   y the ground-truth label, eps in pixel units / 255

The input gradient does not depend on eps, so one forward + backward serves every eps of a run (one more
forward per eps classifies the perturbed images). The loss is summed over the batch (not averaged): each
image's gradient is then its own loss's gradient, whatever else is in the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..datasets.common import IMAGENET_MEAN, IMAGENET_STD
from ..errors import ConfigError
from .curves import predict_columns

PAPER_EPS = 8.0  # Table 11's eps in 1/255 units (see docs/robustness_protocol.md for where it is stated)


class PixelClassifier(nn.Module):
    """A classifier fed [0, 1] RGB pixels: normalises them with mean/std, then runs `net` (logits out)."""

    def __init__(
        self, net: nn.Module, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels in [0, 1] -> (B, K) logits."""
        return self.net((pixels - self.mean.to(pixels.dtype)) / self.std.to(pixels.dtype))


def check_eps(values: Sequence[float]) -> list[float]:
    """The eps values of --eps (1/255 units) as floats; ConfigError unless each is finite and in (0, 255]."""
    out = []
    for v in values:
        try:
            e = float(v)
        except (TypeError, ValueError):
            e = float("nan")
        if not math.isfinite(e) or not 0.0 < e <= 255.0:
            raise ConfigError(
                f"--eps {v}: give FGSM eps in 1/255 pixel units, each in (0, 255], e.g. --eps 8 "
                f"(= 8/255, the CutMix paper's Table 11) or --eps 0.5 2 8"
            )
        out.append(e)
    if len(set(out)) != len(out):
        raise ConfigError(f"--eps {' '.join(map(str, values))}: the values repeat; give each eps once")
    return out


def eps_key(eps: float) -> str:
    """The name of one eps (1/255 units) in metric keys and CSV columns: 8 -> 'eps8', 0.5 -> 'eps0.5'."""
    return f"eps{float(eps):g}"


def input_gradient_sign(
    model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """sign(d CE_sum / d pixels) and the clean logits of one batch (one forward, one backward).

    `model` takes [0, 1] pixels (a PixelClassifier); its parameters may have requires_grad off (only the input
    gradient is computed). Returns (sign (B, 3, H, W) in {-1, 0, 1}, logits (B, K), detached).
    """
    x = pixels.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = F.cross_entropy(logits.float(), labels.to(logits.device), reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad.sign(), logits.detach()


def fgsm_perturb(pixels: torch.Tensor, grad_sign: torch.Tensor, eps: float) -> torch.Tensor:
    """x + eps/255 * sign, clipped to [0, 1]; `eps` in 1/255 units."""
    return (pixels + (float(eps) / 255.0) * grad_sign).clamp_(0.0, 1.0)


def fgsm_predictions(
    model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, eps: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """FGSM at each eps on one batch -> (clean logits (B, K), predicted classes after the attack (B, E) int64)."""
    sign, logits = input_gradient_sign(model, pixels, labels)
    return logits, predict_columns(model, (fgsm_perturb(pixels, sign, e) for e in eps), len(pixels))
