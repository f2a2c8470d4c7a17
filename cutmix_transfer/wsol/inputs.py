"""Image and mask loading in wsolevaluation's frame: every image, mask and score map lives at 224x224.

- image: PIL, RGB, resized to 224x224 (bilinear, no crop), normalised with the checkpoint's mean/std (ImageNet's
  unless --mean / --std or its meta say otherwise); ``input_size`` feeds the network
  another size while the scoring frame stays 224;
- CUB masks: grayscale, foreground > 127 (soft masks), nearest-neighbour resize to 224;
- OpenImages masks (wsolevaluation's ``get_mask``): each instance mask resized with nearest neighbour, foreground
  ``> 0.5`` on the 0-255 values (every non-zero pixel), the union over instances; the ignore file likewise, minus
  the foreground.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..datasets.common import IMAGENET_MEAN, IMAGENET_STD
from .boxes import RESIZE_LENGTH
from .metrics import resize_mask


def load_image_224(
    path: str | os.PathLike,
    size: int = RESIZE_LENGTH,
    input_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> tuple[torch.Tensor, np.ndarray, tuple[int, int]]:
    """Read an image as wsolevaluation's loader: PIL, RGB, Resize((size, size)) bilinear, normalised with `mean` /
    `std` (wsolevaluation's: ImageNet's; the evaluator passes the checkpoint's, normalization.resolve_normalization).

    Returns (normalised (3, input_size, input_size) float32 tensor (input_size None: size), the resized
    (size, size, 3) uint8 RGB image of the scoring frame, original (width, height)). Raises OSError / PIL's
    UnidentifiedImageError on unreadable files.
    """
    with Image.open(path) as im:
        im.load()
        size_wh = im.size
        rgb = im.convert("RGB")
    resized = TF.resize(rgb, [size, size], interpolation=InterpolationMode.BILINEAR)
    net_in = resized
    if input_size is not None and input_size != size:
        net_in = TF.resize(rgb, [input_size, input_size], interpolation=InterpolationMode.BILINEAR)
    tensor = TF.normalize(TF.to_tensor(net_in), list(mean), list(std))
    return tensor, np.asarray(resized, dtype=np.uint8), (int(size_wh[0]), int(size_wh[1]))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the image header (no decode); OSError / UnidentifiedImageError when unreadable."""
    with Image.open(path) as im:
        return int(im.size[0]), int(im.size[1])


def _read_gray(path: str | os.PathLike) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if raw is None:
        raise OSError(f"cv2 cannot read {path}")
    return raw


def load_mask_224(path: str | os.PathLike, size: int = RESIZE_LENGTH) -> np.ndarray:
    """(size, size) bool foreground of a (CUB) mask image: grayscale > 127, then nearest-neighbour resize."""
    return resize_mask((_read_gray(path) > 127).astype(np.uint8), (size, size))


def load_instance_masks_224(
    mask_paths: Sequence[str | os.PathLike], ignore_path: str | os.PathLike | None, size: int = RESIZE_LENGTH
) -> tuple[np.ndarray, np.ndarray]:
    """OpenImages: (foreground, ignore) (size, size) bool. Foreground: union of the instance masks, each resized
    with nearest neighbour then > 0.5 on its 0-255 values; ignore: the ignore file alike, minus the foreground
    (all False without an ignore file)."""
    if not mask_paths:
        raise ValueError("an OpenImages image needs at least one instance mask")
    fg = np.zeros((size, size), dtype=bool)
    for p in mask_paths:
        fg |= resize_mask(_read_gray(p), (size, size))
    ignore = np.zeros((size, size), dtype=bool)
    if ignore_path is not None:
        ignore = resize_mask(_read_gray(ignore_path), (size, size)) & ~fg
    return fg, ignore


class EvalImages(torch.utils.data.Dataset):
    """Images (and masks) of the samples at `indices`. Never raises: a read failure comes back as an error text,
    so the main process can name the file (DataLoader workers would wrap the exception in a traceback).
    With load_images=False only the image's size is read (scoring saved maps needs no pixels)."""

    def __init__(
        self,
        samples: Sequence,
        indices: Sequence[int],
        input_size: int = RESIZE_LENGTH,
        load_images: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.samples = samples
        self.indices = list(indices)
        self.input_size = int(input_size)
        self.load_images = load_images
        self.mean, self.std = tuple(mean), tuple(std)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        index = self.indices[i]
        s = self.samples[index]
        side = self.input_size if self.load_images else 1
        item = {
            "index": index,
            "error": "",
            "image": torch.zeros(3, side, side),
            "mask": torch.zeros(RESIZE_LENGTH, RESIZE_LENGTH, dtype=torch.bool),
            "has_mask": False,
            "ignore": torch.zeros(RESIZE_LENGTH, RESIZE_LENGTH, dtype=torch.bool),
            "size_wh": torch.zeros(2, dtype=torch.int64),
        }
        try:
            if self.load_images:
                item["image"], _, size_wh = load_image_224(
                    s.path, input_size=self.input_size, mean=self.mean, std=self.std
                )
            elif not all(s.size_wh):
                size_wh = image_size(s.path)
        except Exception as e:  # noqa: BLE001 -- any decoder failure means "unreadable"
            item["error"] = f"unreadable image: {s.path} ({type(e).__name__}: {e})"
            return item
        # the frame the GT boxes are in: the reader's size when it gives one, else the file's
        item["size_wh"] = torch.tensor(tuple(s.size_wh) if all(s.size_wh) else size_wh, dtype=torch.int64)
        mask_paths = getattr(s, "mask_paths", None)
        where = s.mask_path if not mask_paths else ", ".join(map(str, mask_paths))
        try:
            if mask_paths:
                fg, ignore = load_instance_masks_224(mask_paths, s.ignore_path)
                item["mask"], item["ignore"] = torch.from_numpy(fg), torch.from_numpy(ignore)
                item["has_mask"] = True
            elif s.mask_path is not None:
                item["mask"] = torch.from_numpy(load_mask_224(s.mask_path))
                item["has_mask"] = True
        except Exception as e:  # noqa: BLE001
            if mask_paths and s.ignore_path is not None and not os.path.isfile(s.ignore_path):
                where = s.ignore_path
            item["error"] = f"unreadable mask: {where} for image {s.path} ({type(e).__name__}: {e})"
        return item
