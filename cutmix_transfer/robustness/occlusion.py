"""Centre and boundary occlusion (CutMix paper, Figure 5a; Appendix E.1) on pixels in [0, 1].

A square of side s is centred in the S x S image: rows and columns [start, start + s) with start = (S - s) // 2
(when S - s is odd the extra pixel goes below / right of the square). 'center' fills the square (a hole),
'boundary' fills everything outside it. The paper "zeroed-out" the pixels without saying in which space; the
fill (docs/robustness_protocol.md, section 3):
- 'black' (default): pixel value 0;
- 'mean': zero in the normalised network input, i.e. the normalisation mean in pixels (the dataset's mean
  colour), as Cutout's code does (it zeroes the normalised tensor). The mean is the model's own
  (PixelClassifier.mean), so the fill follows the normalisation the model gets.
Sides are given in the 224-pixel frame of the protocol and scaled to the network's input side (`scale_sides`),
so a 96-pixel backbone is occluded at the same fractions of its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from ..errors import ConfigError

Mode = Literal["center", "boundary"]
MODES: tuple[str, ...] = ("center", "boundary")
FILLS: tuple[str, ...] = ("black", "mean")
REFERENCE_SIZE = 224  # the frame --hole-sizes / --cutmix-sides are given in
DEFAULT_SIDES: tuple[int, ...] = tuple(range(0, REFERENCE_SIZE + 1, 16))  # 0, 16, ..., 224: 15 points


def centered_span(size: int, side: int) -> tuple[int, int]:
    """(start, stop) of a centred run of `side` pixels in `size`: start = (size - side) // 2."""
    if not 0 <= side <= size:
        raise ValueError(f"side {side} outside [0, {size}]")
    start = (size - side) // 2
    return start, start + side


def check_sides(sides: Sequence[int], flag: str = "--hole-sizes") -> list[int]:
    """Sides in the 224 frame as ints; ConfigError unless each is an integer in [0, 224] and none repeats."""
    out = []
    for s in sides:
        if float(s) != int(s) or not 0 <= int(s) <= REFERENCE_SIZE:
            raise ConfigError(
                f"{flag} {s}: give square sides in pixels of the 224 frame, integers in "
                f"[0, {REFERENCE_SIZE}] (they scale with --image-size), e.g. {flag} 0 32 64 112 224"
            )
        out.append(int(s))
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"{flag} {' '.join(map(str, sides))}: give at least one side, each once")
    return out


def scale_sides(sides: Sequence[int], image_size: int, reference: int = REFERENCE_SIZE) -> list[int]:
    """Sides of the 224 frame in pixels of an `image_size` input: round(s * image_size / 224), within [0, size]."""
    return [min(image_size, max(0, int(round(s * image_size / reference)))) for s in sides]


def occlusion_mask(size: int, side: int, mode: Mode) -> torch.Tensor:
    """(size, size) float32 mask, 1 where pixels are kept: 'center' zeroes the centred square, 'boundary' the rest."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    a, b = centered_span(size, side)
    inside = torch.zeros(size, size, dtype=torch.float32)
    inside[a:b, a:b] = 1.0
    return 1.0 - inside if mode == "center" else inside


def check_fill(fill: str) -> str:
    """--occlusion-fill as given; ConfigError unless it is one of FILLS."""
    if fill not in FILLS:
        raise ConfigError(f"--occlusion-fill {fill!r}: choose one of {', '.join(FILLS)}")
    return fill


def fill_value(fill: str, mean: torch.Tensor | None = None) -> torch.Tensor | float:
    """What occluded pixels become: 0.0 for 'black', the model's (1, C, 1, 1) normalisation mean for 'mean'."""
    if check_fill(fill) == "black":
        return 0.0
    if mean is None:
        raise ValueError("occlusion fill 'mean' needs the model's normalisation mean")
    return mean


def square_side(pixels: torch.Tensor) -> int:
    """S of (..., S, S) images (a batch or one image); ValueError unless they are square."""
    height, width = pixels.shape[-2:]
    if height != width:
        raise ValueError(f"square images expected, got {tuple(pixels.shape)}")
    return int(width)


def occlude(pixels: torch.Tensor, side: int, mode: Mode, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """A copy of (B, C, S, S) `pixels` with the centred square of `side` (pixels of S) set to `fill` ('center') or
    everything outside it set to `fill` ('boundary'); `fill` a number or a (1, C, 1, 1) colour (`fill_value`)."""
    size = square_side(pixels)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    a, b = centered_span(size, side)
    colour = torch.as_tensor(fill, dtype=pixels.dtype, device=pixels.device)
    if mode == "center":
        out = pixels.clone()
        out[..., a:b, a:b] = colour  # a number, or (1, C, 1, 1) broadcast over the batch and the square
        return out
    out = torch.empty_like(pixels)
    out[...] = colour
    out[..., a:b, a:b] = pixels[..., a:b, a:b]
    return out
