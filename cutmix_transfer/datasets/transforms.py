"""Image transforms of the classification recipes, built from a small serialisable spec (config-friendly).

Presets (all end in ToTensor + Normalize, giving (3, size, size) float32 normalised images):
- 'imagenet_train': CutMix-PyTorch's ImageNet recipe: RandomResizedCrop(size), flip, ColorJitter(0.4, 0.4, 0.4),
  AlexNet-style PCA lighting (alphastd 0.1);
- 'imagenet_test':  Resize(size / 0.875) of the short side, CenterCrop(size);
- 'pad_crop_train': RandomCrop(size, padding=pad), flip (CIFAR and the demo);
- 'resize_crop_train': Resize((resize, resize)), RandomCrop(size), flip (wsolevaluation's CUB fine-tuning);
- 'resize_test':    Resize((size, size)) (a no-op when the images already have that size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torchvision import transforms as T

from ..errors import ConfigError
from .common import IMAGENET_MEAN, IMAGENET_STD

Preset = Literal["imagenet_train", "imagenet_test", "pad_crop_train", "resize_crop_train", "resize_test"]
PRESETS: tuple[str, ...] = get_args(Preset)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
# ImageNet RGB covariance eigen-decomposition used for PCA lighting (AlexNet; fb.resnet.torch; CutMix-PyTorch).
_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


class Lighting:
    """AlexNet PCA lighting noise on a (3, H, W) float image in [0, 1]: add eigvec @ (alpha * eigval),
    alpha ~ N(0, s)."""

    def __init__(self, alphastd: float = 0.1) -> None:
        self.alphastd = alphastd

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.alphastd == 0:
            return img
        alpha = torch.randn(3) * self.alphastd
        rgb = (_EIGVEC * alpha[None, :] * _EIGVAL[None, :]).sum(dim=1)
        return img + rgb[:, None, None]

    def __repr__(self) -> str:
        return f"Lighting(alphastd={self.alphastd})"


def build_transform(
    preset: Preset,
    size: int,
    pad: int = 4,
    resize: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    """A PIL-image -> normalised (3, size, size) float32 tensor transform for one of the recipes above."""
    if preset not in PRESETS:
        raise ConfigError(f"transform preset {preset!r} is unknown: choose one of {', '.join(PRESETS)}")
    if not isinstance(size, int) or size < 8:
        raise ConfigError(f"transform size must be an integer >= 8 (pixels), got {size!r}")
    tail = [T.ToTensor(), T.Normalize(tuple(mean), tuple(std))]
    if preset == "imagenet_train":
        ops = [
            T.RandomResizedCrop(size),
            T.RandomHorizontalFlip(),
            T.ColorJitter(0.4, 0.4, 0.4),
            T.ToTensor(),
            Lighting(0.1),
            T.Normalize(tuple(mean), tuple(std)),
        ]
        return T.Compose(ops)
    if preset == "imagenet_test":
        return T.Compose([T.Resize(int(round(size / 0.875))), T.CenterCrop(size), *tail])
    if preset == "pad_crop_train":
        return T.Compose([T.RandomCrop(size, padding=pad), T.RandomHorizontalFlip(), *tail])
    if preset == "resize_crop_train":
        resize = resize or int(round(size / 0.875))
        if resize < size:
            raise ConfigError(f"resize_crop_train needs resize >= size, got resize={resize} size={size}")
        return T.Compose([T.Resize((resize, resize)), T.RandomCrop(size), T.RandomHorizontalFlip(), *tail])
    return T.Compose([T.Resize((size, size)), *tail])
