#!/usr/bin/env python
"""Regenerate reference.npz: hendrycks/robustness's own corruption functions (ImageNet-C/create_c/make_cifar_c.py,
make_tinyimagenet_c.py, make_imagenet_c.py), run on fixed inputs with fixed seeds, so that tests/test_corruptions_
generate.py checks cutmix_transfer.corruptions.generate against them without the original code.

    .venv/bin/pip install scikit-image      # the originals need it; the toolkit does not
    .venv/bin/python tests/data/corruptions/make_reference.py --robustness <checkout of hendrycks/robustness>

The originals are read from the checkout and their function definitions executed (nothing is copied into the
toolkit) with shims for what changed since 2018:
- skimage.filters.gaussian(multichannel=True) -> channel_axis=-1 (the argument was removed in scikit-image 0.19);
- skimage.util.random_noise(mode='s&p') -> the scikit-image 0.14 algorithm the release ran: np.random.choice over
  [True, False] with p=[amount, 1 - amount] for 'flipped', then with [0.5, 0.5] for 'salted', from numpy's global
  generator (scikit-image >= 0.19 draws from its own default_rng instead and cannot be seeded through numpy);
- np.float_ (removed in numpy 2) -> np.float64; scipy.ndimage.interpolation -> scipy.ndimage.
Before each call numpy's global generator is seeded with seed(corruption, severity); the test seeds its RandomState
alike. Inputs: synthetic images (smooth colour gradients, discs, bars, mild texture) from RandomState(2019).
Stored per parameter set: 'cifar' (32 px) every severity, whole images; 'tinyimagenet' (64 px) and 'imagenet' (224 px)
severity 3, the centre 40 x 40 crop plus the whole image's mean (the file stays small).
"""

from __future__ import annotations

import argparse
import ast
import types
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage
import skimage
import skimage.color
import skimage.filters
from PIL import Image

SCRIPTS = {"cifar": "make_cifar_c.py", "tinyimagenet": "make_tinyimagenet_c.py", "imagenet": "make_imagenet_c.py"}
SIDES = {"cifar": 32, "tinyimagenet": 64, "imagenet": 224}
SEVERITIES = {"cifar": (1, 2, 3, 4, 5), "tinyimagenet": (3,), "imagenet": (3,)}
CROP = 40
HELPERS = ("disk", "plasma_fractal", "clipped_zoom")
CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "zoom_blur",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
    "speckle_noise",
    "gaussian_blur",
    "spatter",
    "saturate",
)


def seed_of(corruption: str, severity: int) -> int:
    """The seed of numpy's global generator (original) and of the RandomState (toolkit) for one call."""
    return 1000 * (CORRUPTIONS.index(corruption) + 1) + severity


def test_image(side: int, rng: np.random.RandomState) -> np.ndarray:
    """A deterministic (side, side, 3) uint8 picture with edges, flat areas and texture (noise at 32 / 64 px, a fine
    stripe pattern at 224 px, which keeps the committed file small)."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    img = np.stack([0.2 + 0.6 * xx, 0.3 + 0.5 * yy, 0.5 + 0.3 * np.sin(6 * xx * yy)], axis=-1)
    for _ in range(4):
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.08, 0.25)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    img[:, int(0.45 * side) : int(0.55 * side)] *= 0.3
    img += rng.normal(0, 0.03, img.shape) if side <= 64 else 0.02 * np.sin(40 * xx)[..., None]  # 224: compressible
    return np.uint8(np.clip(img, 0, 1) * 255)


def _old_random_noise(image, mode="gaussian", seed=None, clip=True, **kwargs):
    """scikit-image 0.14's random_noise for mode 's&p' (the only mode the scripts use)."""
    assert mode == "s&p"
    if seed is not None:
        np.random.seed(seed=seed)
    image = skimage.img_as_float(image)
    low_clip = -1.0 if image.min() < 0 else 0.0
    p, q = kwargs.get("amount", 0.05), kwargs.get("salt_vs_pepper", 0.5)
    out = image.copy()
    flipped = np.random.choice([True, False], size=image.shape, p=[p, 1 - p])
    salted = np.random.choice([True, False], size=image.shape, p=[q, 1 - q])
    out[flipped & salted] = 1
    out[flipped & ~salted] = low_clip
    return np.clip(out, low_clip, 1.0) if clip else out


def _gaussian(image, sigma=1, multichannel=None, **kwargs):
    return skimage.filters.gaussian(image, sigma=sigma, channel_axis=-1 if multichannel else None, **kwargs)


def load_originals(path: Path) -> dict:
    """The helper and corruption functions of one script, defined in a namespace with the shims."""
    if not hasattr(np, "float_"):
        np.float_ = np.float64
    src = path.read_text()
    tree = ast.parse(src)
    wanted = set(HELPERS) | set(CORRUPTIONS)
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    sk = types.SimpleNamespace(
        util=types.SimpleNamespace(random_noise=_old_random_noise),
        color=types.SimpleNamespace(rgb2hsv=skimage.color.rgb2hsv, hsv2rgb=skimage.color.hsv2rgb),
    )
    ns = {
        "np": np,
        "sk": sk,
        "gaussian": _gaussian,
        "cv2": cv2,
        "PILImage": Image,
        "BytesIO": BytesIO,
        "scizoom": scipy.ndimage.zoom,
        "map_coordinates": scipy.ndimage.map_coordinates,
    }
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), ns)  # noqa: S102 -- the reference code
    return ns


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robustness", required=True, help="a checkout of github.com/hendrycks/robustness")
    p.add_argument("--out", default=str(Path(__file__).with_name("reference.npz")))
    args = p.parse_args()
    rng = np.random.RandomState(2019)
    arrays = {}
    for pset, script in SCRIPTS.items():
        side = SIDES[pset]
        fns = load_originals(Path(args.robustness) / "ImageNet-C" / "create_c" / script)
        clean = test_image(side, rng)
        arrays[f"{pset}/input"] = clean
        for c in CORRUPTIONS:
            for s in SEVERITIES[pset]:
                np.random.seed(seed_of(c, s))
                arrays[f"{pset}/{c}/{s}/seed"] = np.int64(seed_of(c, s))
                out = np.uint8(np.asarray(fns[c](Image.fromarray(clean), s)))
                if pset != "cifar":
                    top = (side - CROP) // 2
                    arrays[f"{pset}/{c}/{s}/mean"] = np.float64(out.mean())
                    out = out[top : top + CROP, top : top + CROP]
                arrays[f"{pset}/{c}/{s}"] = out
        print(pset, "done")
    versions = {m.__name__: m.__version__ for m in (np, scipy, skimage, cv2)}
    versions["PIL"] = Image.__version__
    arrays["versions"] = np.array(repr(versions))
    np.savez_compressed(args.out, **arrays)
    print(f"-> {args.out} ({Path(args.out).stat().st_size} bytes); {versions}")


if __name__ == "__main__":
    main()
