"""FGSM (Goodfellow et al., 2015): the white-box attack of the CutMix paper's Table 11 (Appendix E.1, eq. 3:
x_adv = x + eps * sign(grad_x L(theta, x, y)), eps = 8/255, no clipping in the equation).

The paper does not say in which space eps applies; `space` picks it (docs/robustness_protocol.md, section 2):
- 'pixels' (default): eps on [0, 1] pixels, then clipped to [0, 1] (a valid image):
      x_adv = clip(x + eps/255 * sign(grad_x CE(f(x), y)), 0, 1)
- 'normalized': eps on the normalised network input z = (x - mean) / std, no clipping, as code that attacks a
  data loader's tensors does: z_adv = z + eps/255 * sign(grad_z CE), i.e. x_adv = x + std * eps/255 * sign
  (grad_z = std * grad_x, so both signs agree); 8/255 there is about 1.8/255 in pixels (std ~0.226).
`PixelClassifier` holds the normalisation the model gets (its `mean` / `std` buffers), so the gradient is taken
with respect to the [0, 1] pixels and both spaces are built from it.

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

from ..errors import ConfigError
from .curves import predict_columns

PAPER_EPS = 8.0  # Table 11's eps in 1/255 units: Appendix E.1, "we set the noise scale eps = 8/255"
FGSM_SPACES: tuple[str, ...] = ("pixels", "normalized")


class PixelClassifier(nn.Module):
    """A classifier fed [0, 1] RGB pixels: normalises them with `mean` / `std` (the statistics the checkpoint was
    trained with, normalization.resolve_normalization: no default, so no attack falls back to ImageNet's), then
    runs `net` (logits out)."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
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


def check_space(space: str) -> str:
    """--fgsm-space as given; ConfigError unless it is one of FGSM_SPACES."""
    if space not in FGSM_SPACES:
        raise ConfigError(f"--fgsm-space {space!r}: choose one of {', '.join(FGSM_SPACES)}")
    return space


def fgsm_perturb(
    pixels: torch.Tensor, grad_sign: torch.Tensor, eps: float, space: str = "pixels", std: torch.Tensor | None = None
) -> torch.Tensor:
    """The attacked pixels; `eps` in 1/255 units. 'pixels': x + eps/255 * sign, clipped to [0, 1];
    'normalized': x + std * eps/255 * sign (a step of eps/255 on the normalised input), not clipped. `std` is the
    model's (1, 3, 1, 1) normalisation std (PixelClassifier.std), needed for 'normalized'."""
    step = float(eps) / 255.0
    if check_space(space) == "pixels":
        return (pixels + step * grad_sign).clamp_(0.0, 1.0)
    if std is None:
        raise ValueError("fgsm_perturb(space='normalized') needs the model's normalisation std")
    return pixels + (step * std.to(pixels.dtype)) * grad_sign


def fgsm_predictions(
    model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, eps: Sequence[float], space: str = "pixels"
) -> tuple[torch.Tensor, torch.Tensor]:
    """FGSM at each eps on one batch -> (clean logits (B, K), predicted classes after the attack (B, E) int64).
    `model` is a PixelClassifier; 'normalized' steps by its own std."""
    sign, logits = input_gradient_sign(model, pixels, labels)
    std = getattr(model, "std", None)
    attacked = (fgsm_perturb(pixels, sign, e, space, std) for e in eps)
    return logits, predict_columns(model, attacked, len(pixels))
