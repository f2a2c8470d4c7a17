"""What every evaluation tool sets up before it runs a model: the device, the seeds, the network input size.

The WSOL evaluator, CAM figures, and the robustness / OOD tools share these, so that `--device`, `--seed` and
`--image-size` mean the same thing (and fail with the same message) in every tool; the evaluators' config
dataclasses share their run options through `EvalOptions`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .normalization import resolve_normalization

# the network input sides a tool accepts (--image-size): 224 is the usual protocol, the demo trains at 96
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 1024


@dataclass(kw_only=True)
class EvalOptions:
    """The run options every evaluator's config (WSOL, robustness, OOD) holds, meaning the same in each; keyword-only,
    so a config's own fields stay positional. data_root None: the dataset's folder under data/; arch None: inferred
    from the weights; out None: the tool's default_out_dir; mean / std None: the checkpoint meta's statistics, else
    the dataset's (normalization.resolve_normalization, through evalmodel.load_eval_classifier)."""

    data_root: str | os.PathLike | None = None
    arch: str | None = None
    out: str | os.PathLike | None = None
    device: str = "auto"
    seed: int = 0
    trust_checkpoint: bool = False
    skip_unreadable: bool = False
    progress: bool = True
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None

    def check_normalization(self, dataset: str) -> None:
        """ConfigError now, before any work, for a bad --mean / --std (wrong length, a std <= 0, one without the
        other); which statistics apply is decided once the checkpoint's meta is read."""
        resolve_normalization(None, dataset, self.mean, self.std)

    def record_config(self) -> dict[str, Any]:
        """Every field, as the record's `config` block holds it: paths as text, tuples as lists (JSON-ready)."""
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in asdict(self).items()
        }


def resolve_device(device: str) -> torch.device:
    """`--device` -> a torch.device: 'auto' is cuda when a GPU is visible, else cpu; ConfigError for a bad name
    or for cuda on a machine without a visible GPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"--device {device!r} is not a device ({e}); use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is visible here; use --device cpu")
    return dev


def seed_global_rngs(seed: int, cuda: bool = True) -> None:
    """Seed python's `random`, numpy's global generator and torch's CPU (and with `cuda`, CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if cuda:
        torch.manual_seed(seed)
    else:
        torch.default_generator.manual_seed(seed)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators and make cuDNN deterministic: the same seed, the same numbers."""
    seed_global_rngs(seed)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def check_input_size(size: int) -> None:
    """`--image-size`: the network input side in pixels, MIN_INPUT_SIZE..MAX_INPUT_SIZE; ConfigError otherwise."""
    if not MIN_INPUT_SIZE <= int(size) <= MAX_INPUT_SIZE:
        raise ConfigError(
            f"--image-size {size}: use the network input side in pixels, {MIN_INPUT_SIZE}.."
            f"{MAX_INPUT_SIZE} (224 is the WSOL protocol; the size the backbone was trained at "
            f"otherwise)"
        )
