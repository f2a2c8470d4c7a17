"""OOD detectors behind one interface: a function (model, images, **params) -> (scores, logits).

`images` are the normalised (B, 3, H, W) network inputs on the model's device; `scores` is a (B,) float64 CPU
tensor, higher meaning more in-distribution; `logits` the (B, K) float32 CPU logits of the plain forward pass
(they give the predicted class in the per-image rows). The model is in eval mode, so each image's score depends
on that image only (batched scores equal one-image scores). Scores are computed from the float32 logits in
`score_dtype`: float64 by default, so that confident predictions tie less often; 'float32' as the reference codes
(ODIN's, Lee et al.'s) compute the softmax, where a confident model's in-distribution maxima round to exactly 1.0
(the returned tensor is float64 either way, holding the float32 values exactly).

- ``msp``: the maximum softmax probability (Hendrycks & Gimpel), the CutMix paper's detector: no temperature, no
  input perturbation. One forward pass.
- ``odin``: ODIN (Liang et al., ICLR 2018): x' = x - epsilon * sign(-grad_x log S_yhat(x; T)) / std, with S the
  softmax of logits / T, yhat the predicted class and the gradient sign taken as ODIN's code does (>= 0 -> +1);
  the score is max softmax(f(x') / T). Dividing by the per-channel std makes epsilon a step in [0, 1] pixel
  units. A forward, a backward and a forward pass.
- ``energy``: the negative free energy T * logsumexp(f(x) / T) (Liu et al., NeurIPS 2020). One forward pass.

Another detector is a function with this signature registered with ``@register_detector("name")``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..datasets.common import CIFAR100_CUTMIX_STD
from ..errors import ConfigError

DetectorFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
DETECTORS: dict[str, DetectorFn] = {}
ODIN_TEMPERATURE = 1000.0  # ODIN's setting for every model and OOD set
ODIN_EPSILON = 0.0014  # ODIN's default perturbation magnitude (its README tunes it per model and set)
SCORE_DTYPES = {"float64": torch.float64, "float32": torch.float32}
# parameters a tool sets for every detector that takes them, not --temperature-like options of one detector
_SHARED_PARAMS = ("input_std", "score_dtype")


def _dtype(score_dtype: str) -> torch.dtype:
    if score_dtype not in SCORE_DTYPES:
        raise ConfigError(f"--score-dtype {score_dtype!r}: choose one of {', '.join(SCORE_DTYPES)}")
    return SCORE_DTYPES[score_dtype]


def register_detector(name: str) -> Callable[[DetectorFn], DetectorFn]:
    """Decorator: make `fn` available as --detector `name`."""

    def deco(fn: DetectorFn) -> DetectorFn:
        DETECTORS[name] = fn
        return fn

    return deco


def msp(model: nn.Module, images: torch.Tensor, score_dtype: str = "float64") -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum softmax probability of the plain forward pass."""
    with torch.no_grad():
        logits = model(images).float().cpu()
    return torch.softmax(logits.to(_dtype(score_dtype)), dim=1).max(dim=1).values.double(), logits


def energy(
    model: nn.Module, images: torch.Tensor, temperature: float = 1.0, score_dtype: str = "float64"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative free energy T * logsumexp(logits / T) of the plain forward pass."""
    with torch.no_grad():
        logits = model(images).float().cpu()
    scores = temperature * torch.logsumexp(logits.to(_dtype(score_dtype)) / temperature, dim=1)
    return scores.double(), logits


def odin(
    model: nn.Module,
    images: torch.Tensor,
    temperature: float = ODIN_TEMPERATURE,
    epsilon: float = ODIN_EPSILON,
    input_std: tuple[float, ...] = CIFAR100_CUTMIX_STD,
    score_dtype: str = "float64",
) -> tuple[torch.Tensor, torch.Tensor]:
    """ODIN: temperature-scaled max softmax of the input moved by epsilon against the gradient of the loss."""
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        pred = logits.detach().argmax(dim=1)
        # sum, not mean: each image's gradient is then its own loss's gradient (the sign would not change anyway)
        loss = F.cross_entropy(logits / temperature, pred, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    sign = torch.where(grad >= 0, 1.0, -1.0).to(x.dtype)
    std = torch.as_tensor(input_std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    perturbed = x.detach() - epsilon * sign / std
    with torch.no_grad():
        scaled = model(perturbed).float().cpu().to(_dtype(score_dtype)) / temperature
    return torch.softmax(scaled, dim=1).max(dim=1).values.double(), logits.detach().float().cpu()


# the built-in three, registered by a call rather than the decorator, so that the mutation tool (which skips
# decorated functions) measures their tests too
for _fn in (msp, energy, odin):
    register_detector(_fn.__name__)(_fn)


@dataclass
class Detector:
    """A registered detector with its parameters bound: `detector(model, images) -> (scores, logits)`."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in DETECTORS:
            raise ConfigError(f"--detector {self.name!r}: choose one of {', '.join(sorted(DETECTORS))}")
        accepted = detector_params(self.name)
        unknown = sorted(set(self.params) - set(accepted))
        if unknown:
            raise ConfigError(
                f"detector {self.name!r} takes no {', '.join(unknown)} (its parameters: "
                f"{', '.join(accepted) or 'none'})"
            )
        for k in ("temperature", "epsilon"):
            v = self.params.get(k)
            if v is not None and not (float(v) > 0 if k == "temperature" else float(v) >= 0):
                raise ConfigError(
                    f"detector {self.name!r}: {k} must be {'> 0' if k == 'temperature' else '>= 0'}, got {v}"
                )
        if "score_dtype" in self.params:
            _dtype(self.params["score_dtype"])
        self._fn = functools.partial(DETECTORS[self.name], **self.params)

    def __call__(self, model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._fn(model, images)

    def all_params(self) -> dict[str, Any]:
        """Every parameter with the value in use (given or the function's default), for the record."""
        out = {k: v for k, v in detector_params(self.name).items()}
        out.update(self.params)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}


def detector_params(name: str) -> dict[str, Any]:
    """The keyword parameters of detector `name` and their defaults."""
    sig = inspect.signature(DETECTORS[name])
    return {k: p.default for k, p in list(sig.parameters.items())[2:]}


def build_detector(
    name: str,
    temperature: float | None = None,
    epsilon: float | None = None,
    input_std: tuple[float, ...] | None = None,
    score_dtype: str | None = None,
) -> Detector:
    """The detector `name` with the options a tool passes (None: the detector's default; options it does not take
    are an error only when given)."""
    if name not in DETECTORS:
        raise ConfigError(f"--detector {name!r}: choose one of {', '.join(sorted(DETECTORS))}")
    accepted = detector_params(name)
    given = {"temperature": temperature, "epsilon": epsilon}
    params = {k: v for k, v in given.items() if v is not None}
    bad = [k for k in params if k not in accepted]
    if bad:
        raise ConfigError(
            f"--{bad[0]} does not apply to --detector {name} (it takes: "
            f"{', '.join(k for k in accepted if k not in _SHARED_PARAMS) or 'no options'})"
        )
    if input_std is not None and "input_std" in accepted:
        params["input_std"] = tuple(float(v) for v in input_std)
    if score_dtype is not None and "score_dtype" in accepted:
        params["score_dtype"] = str(score_dtype)
    return Detector(name, params)
