"""The corruptions of Hendrycks & Dietterich (ICLR 2019) that need neither ImageMagick nor external files, written
after the definitions of hendrycks/robustness's ImageNet-C/create_c/ scripts (docs/corruption_protocol.md).

`corrupt(image, corruption, severity, rng, param_set)` takes an (H, W, 3) uint8 RGB image (square, as the scripts'
Resize + CenterCrop make it) and returns the corrupted uint8 image: the scripts' float result in [0, 255] truncated
by np.uint8, as they save it. Random draws come from `rng`, a numpy RandomState, in the order the scripts draw from
numpy's global generator: seeded alike, the same images. Only numpy, scipy.ndimage, OpenCV and PIL are used; the
scikit-image pieces (gaussian filter, HSV conversions, salt-and-pepper noise) are written out here with the
semantics of the scikit-image the release was made with (docs/corruption_protocol.md, "Generation").

Parameter sets (params.py): 'imagenet' (224 px), 'tinyimagenet' (64 px), 'cifar' (32 px). At another side the
set's numbers are used as they are, except those tied to the side: fog's fractal is the smallest power of two
>= the side, elastic's displacements scale with it, pixelate and glass blur follow the image size.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

from .params import PARAM_SETS, severity_params

Corruption = Callable[[np.ndarray, Any, np.random.RandomState, str], np.ndarray]


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------
def gaussian(x: np.ndarray, sigma: float, channels: bool = False, mode: str = "nearest", truncate: float = 4.0):
    """scikit-image's `filters.gaussian` on a float image: scipy's Gaussian filter, channels (last axis) not blurred."""
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0) if channels else sigma, mode=mode, truncate=truncate)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] -> HSV in [0, 1] (hue as a fraction of the turn; grey pixels hue 0, black saturation 0)."""
    v = rgb.max(axis=-1)
    delta = v - rgb.min(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(delta == 0, 0.0, delta / v)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        h = np.zeros_like(v)
        # the later channel wins a tie, as in scikit-image: red, then green, then blue
        h = np.where(r == v, (g - b) / delta, h)
        h = np.where(g == v, 2.0 + (b - r) / delta, h)
        h = np.where(b == v, 4.0 + (r - g) / delta, h)
    h = (h / 6.0) % 1.0
    h = np.where(delta == 0, 0.0, h)
    return np.stack([h, s, v], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """HSV in [0, 1] -> RGB in [0, 1], the sector formula (the inverse of rgb_to_hsv)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(h * 6)
    f = h * 6 - sector
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    sector = sector.astype(np.int64) % 6
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(hsv.shape, dtype=np.float64)
    for k, (r, g, b) in enumerate(table):
        m = sector == k
        out[..., 0][m], out[..., 1][m], out[..., 2][m] = r[m], g[m], b[m]
    return out


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The defocus kernel: a disk of `radius` on a grid of half-width max(8, radius), normalised, then a 3x3 (5x5 for
    radius > 8) Gaussian blur of sigma `alias_blur` against aliasing."""
    half = 8 if radius <= 8 else int(radius)
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    disk /= disk.sum()
    k = (3, 3) if radius <= 8 else (5, 5)
    return cv2.GaussianBlur(disk, ksize=k, sigmaX=alias_blur)


def plasma_fractal(size: int, decay: float, rng: np.random.RandomState) -> np.ndarray:
    """A (size, size) diamond-square height map in [0, 1] (size a power of two): each level sets the square centres,
    then the edge midpoints, to a quarter of their 4 neighbours' sum (wrapping around) plus uniform noise of +-w^2,
    w starting at 100 and divided by `decay` per level."""
    if size < 2 or size & (size - 1):
        raise ValueError(f"plasma_fractal needs a power of two, got {size}")
    m = np.zeros((size, size), dtype=np.float64)
    step, w = size, 100.0

    def noisy(total: np.ndarray) -> np.ndarray:
        return total / 4 + w * rng.uniform(-w, w, total.shape)

    while step >= 2:
        half = step // 2
        corners = m[0::step, 0::step]
        total = corners + np.roll(corners, -1, axis=0)
        total += np.roll(total, -1, axis=1)
        m[half::step, half::step] = noisy(total)
        centres, corners = m[half::step, half::step], m[0::step, 0::step]
        m[0::step, half::step] = noisy(
            (centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1))
        )
        m[half::step, 0::step] = noisy(
            (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0))
        )
        step //= 2
        w /= decay
    m -= m.min()
    return m / m.max()


def clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the centre of a square image by `factor` (bilinear), cropped back to the image's size."""
    h = x.shape[0]
    crop = int(np.ceil(h / factor))
    top = (h - crop) // 2
    zoom = (factor, factor, 1) if x.ndim == 3 else (factor, factor)
    z = ndimage.zoom(x[top : top + crop, top : top + crop], zoom, order=1)
    trim = (z.shape[0] - h) // 2
    return z[trim : trim + h, trim : trim + h]


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x) / 255.0


# ----------------------------------------------------------------------------------------------------------
# Noise
# ----------------------------------------------------------------------------------------------------------
def gaussian_noise(x, c, rng, _set):
    """Additive N(0, c^2) per value."""
    x = _unit(x)
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x, c, rng, _set):
    """Poisson photon counts at c photons per unit intensity."""
    x = _unit(x)
    return np.clip(rng.poisson(x * c) / c, 0, 1) * 255


def impulse_noise(x, c, rng, _set):
    """Salt and pepper on a fraction c of the values, half each (scikit-image's random_noise 's&p' as the release
    drew it: one uniform per value for 'flipped' (< c), one for 'salt' (< 0.5), from numpy's global generator)."""
    x = _unit(x)
    flipped = rng.random_sample(x.shape) < c
    salted = rng.random_sample(x.shape) < 0.5
    out = x.copy()
    out[flipped & salted] = 1.0
    out[flipped & ~salted] = 0.0
    return np.clip(out, 0, 1) * 255


def speckle_noise(x, c, rng, _set):
    """Multiplicative noise x + x N(0, c^2)."""
    x = _unit(x)
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1) * 255


# ----------------------------------------------------------------------------------------------------------
# Blur
# ----------------------------------------------------------------------------------------------------------
def gaussian_blur(x, c, rng, _set):
    """Gaussian blur of sigma c."""
    return np.clip(gaussian(_unit(x), c, channels=True), 0, 1) * 255


def glass_blur(x, c, rng, _set):
    """Blur (sigma c[0]), then c[2] passes over the pixels (bottom-right to top-left, one randint pair per pixel in
    [-c[1], c[1])) that copy a neighbour's pixel into each, then blur again. The scripts meant a swap, but their tuple
    assignment of numpy views copies the neighbour and leaves it as it was; the release was made so, and so is this."""
    sigma, delta, passes = c
    img = np.uint8(gaussian(_unit(x), sigma, channels=True) * 255)
    h, w = img.shape[:2]
    for _ in range(passes):
        rows, cols = range(h - delta, delta, -1), range(w - delta, delta, -1)
        draws = rng.randint(-delta, delta, size=(len(rows) * len(cols), 2))
        k = 0
        for i in rows:
            for j in cols:
                dx, dy = draws[k]
                k += 1
                img[i, j] = img[i + dy, j + dx]
    return np.clip(gaussian(img / 255.0, sigma, channels=True), 0, 1) * 255


def defocus_blur(x, c, rng, _set):
    """Convolution with an anti-aliased disk of radius c[0] (alias blur c[1])."""
    out = cv2.filter2D(_unit(x), -1, disk_kernel(c[0], c[1]))
    return np.clip(out, 0, 1) * 255


def zoom_blur(x, c, rng, _set):
    """The mean of the image and its centre zooms by 1, 1 + step, ... < stop."""
    x = _unit(x).astype(np.float32)
    factors = np.arange(1, c[0], c[1])
    out = np.zeros_like(x)
    for f in factors:
        out += clipped_zoom(x, f)
    return np.clip((x + out) / (len(factors) + 1), 0, 1) * 255


# ----------------------------------------------------------------------------------------------------------
# Weather
# ----------------------------------------------------------------------------------------------------------
def fog(x, c, rng, _set):
    """Add c[0] x a plasma fractal (decay c[1]), rescaled by max / (max + c[0])."""
    x = _unit(x)
    side = x.shape[0]
    size = 1 << max(1, int(np.ceil(np.log2(side))))
    peak = x.max()
    x = x + c[0] * plasma_fractal(size, c[1], rng)[:side, :side][..., None]
    return np.clip(x * peak / (peak + c[0]), 0, 1) * 255


def spatter(x, c, rng, _set):
    """A thresholded blurred Gaussian field (loc c[0], scale c[1], blur c[2], threshold c[3]): water drops
    (c[5] = 0: pale turquoise, shaded by an embossed distance map, strength c[4]) or mud (c[5] = 1: brown blots,
    blur c[4])."""
    x = np.array(x, dtype=np.float32) / 255.0
    liquid = rng.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    liquid = gaussian(liquid, c[2])
    liquid[liquid < c[3]] = 0
    if c[5] == 0:
        liquid = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.filter2D(dist, cv2.CV_8U, emboss)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = liquid * dist
        peak = m.max()
        m = (m / peak if peak > 0 else np.zeros_like(m)) * c[4]
        color = np.float32(np.array([175, 238, 238]) / 255.0)
        return np.clip(x + m[..., None] * color, 0, 1) * 255
    m = np.where(liquid > c[3], 1, 0)
    m = gaussian(m.astype(np.float32), c[4])
    m[m < 0.8] = 0
    color = np.float32(np.array([63, 42, 20]) / 255.0) * m[..., None]
    x *= 1 - m[..., None]
    return np.clip(x + color, 0, 1) * 255


# ----------------------------------------------------------------------------------------------------------
# Digital
# ----------------------------------------------------------------------------------------------------------
def contrast(x, c, rng, _set):
    """Scale the deviations from each channel's mean by c."""
    x = _unit(x)
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def brightness(x, c, rng, _set):
    """Add c to the HSV value."""
    hsv = rgb_to_hsv(_unit(x))
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1) * 255


def saturate(x, c, rng, _set):
    """HSV saturation s -> s c[0] + c[1]."""
    hsv = rgb_to_hsv(_unit(x))
    hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1) * 255


def jpeg_compression(x, c, rng, _set):
    """A JPEG round trip at quality c (PIL)."""
    buf = BytesIO()
    Image.fromarray(np.asarray(x, dtype=np.uint8)).save(buf, "JPEG", quality=int(c))
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def pixelate(x, c, rng, _set):
    """Box-downsample to int(side c), box-upsample back (PIL)."""
    im = Image.fromarray(np.asarray(x, dtype=np.uint8))
    w, h = im.size
    small = im.resize((int(w * c), int(h * c)), Image.BOX)
    return np.asarray(small.resize((w, h), Image.BOX))


def elastic_transform(x, c, rng, param_set):
    """A random affine warp of three points by up to c[2] pixels, then a smooth displacement field (uniform noise
    blurred with sigma c[1], truncate 3, scaled by c[0]) sampled bilinearly, reflecting at the borders."""
    image = np.array(x, dtype=np.float32) / 255.0
    shape = image.shape
    side = shape[0]
    scale = side / PARAM_SETS["imagenet"] if param_set == "imagenet" else side
    alpha, sigma, shift = (float(v) * scale for v in c)
    centre = np.float32(shape[:2]) // 2
    third = min(shape[:2]) // 3
    pts1 = np.float32([centre + third, [centre[0] + third, centre[1] - third], centre - third])
    pts2 = pts1 + rng.uniform(-shift, shift, size=pts1.shape).astype(np.float32)
    affine = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, affine, shape[:2][::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian(rng.uniform(-1, 1, size=shape[:2]), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dy = (gaussian(rng.uniform(-1, 1, size=shape[:2]), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    xx, yy, zz = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    coords = (np.reshape(yy + dy[..., None], (-1, 1)), np.reshape(xx + dx[..., None], (-1, 1)), np.reshape(zz, (-1, 1)))
    out = ndimage.map_coordinates(image, coords, order=1, mode="reflect").reshape(shape)
    return np.clip(out, 0, 1) * 255


CORRUPTION_FUNCTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "zoom_blur": zoom_blur,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "spatter": spatter,
    "saturate": saturate,
}


def corrupt(
    image: np.ndarray, corruption: str, severity: int, rng: np.random.RandomState, param_set: str = "imagenet"
) -> np.ndarray:
    """One corrupted copy of an (H, W, 3) uint8 square RGB image, as uint8 (module docstring)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.shape[0] != image.shape[1]:
        raise ValueError(f"corrupt needs a square (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    params = severity_params(param_set, corruption, severity)
    out = CORRUPTION_FUNCTIONS[corruption](image, params, rng, param_set)
    return np.uint8(np.asarray(out))
