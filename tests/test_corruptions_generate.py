"""The generated corruptions against hendrycks/robustness's own functions: tests/data/corruptions/reference.npz holds
their outputs on fixed inputs and seeds (make_reference.py ran them side by side with scikit-image shims; see its
docstring), so this runs without the original code. Tolerance (docs/corruption_protocol.md, "Generation"): an
output may differ from the reference by at most 1 (uint8) on at most TOLERANCE_SHARE of its values, and by nothing
else: numpy's draws are taken in the scripts' order, but library versions (scipy's zoom / map_coordinates / gaussian
filter, OpenCV, PIL's JPEG) can move a value across a uint8 truncation boundary. Plus the pieces written out
(HSV, the plasma fractal, the disk kernel) against independent computations."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pytest

from cutmix_transfer.corruptions.generate import (
    CORRUPTION_FUNCTIONS,
    corrupt,
    disk_kernel,
    hsv_to_rgb,
    plasma_fractal,
    rgb_to_hsv,
)
from cutmix_transfer.corruptions.params import GENERATED, NOT_GENERATED
from cutmix_transfer.corruptions.write import check_corruptions, image_rng
from cutmix_transfer.errors import ConfigError

REFERENCE = Path(__file__).parent / "data" / "corruptions" / "reference.npz"
TOLERANCE_SHARE = 0.005  # values allowed to differ by exactly 1
CROP = 40


@pytest.fixture(scope="module")
def ref():
    with np.load(REFERENCE) as z:
        return {k: z[k] for k in z.files}


def _cases():
    cases = [("cifar", c, s) for c in GENERATED for s in range(1, 6)]
    cases += [(p, c, 3) for p in ("tinyimagenet", "imagenet") for c in GENERATED]
    return cases


def _check(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    diff = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    assert diff.max() <= 1, f"{what}: max difference {diff.max()} (at {np.unravel_index(diff.argmax(), diff.shape)})"
    assert (diff == 1).mean() <= TOLERANCE_SHARE, f"{what}: {100 * (diff == 1).mean():.2f}% of values differ by 1"


@pytest.mark.parametrize("pset,corruption,severity", _cases())
def test_matches_the_original_function(ref, pset, corruption, severity):
    key = f"{pset}/{corruption}/{severity}"
    rng = np.random.RandomState(int(ref[f"{key}/seed"]))
    out = corrupt(ref[f"{pset}/input"], corruption, severity, rng, pset)
    assert out.dtype == np.uint8 and out.shape == ref[f"{pset}/input"].shape
    if pset != "cifar":
        assert abs(out.mean() - float(ref[f"{key}/mean"])) < 0.02, key
        top = (out.shape[0] - CROP) // 2
        out = out[top : top + CROP, top : top + CROP]
    _check(out, ref[key], key)


def test_every_generated_corruption_is_covered_and_the_rest_named():
    assert sorted(GENERATED) == sorted(CORRUPTION_FUNCTIONS)
    assert len(GENERATED) == 16 and set(NOT_GENERATED) == {"motion_blur", "snow", "frost"}
    with pytest.raises(ConfigError, match="frost: not generated"):
        check_corruptions(["frost"])


def test_hsv_against_colorsys():
    rng = np.random.default_rng(0)
    rgb = rng.random((200, 3))
    rgb[:20] = rgb[:20, :1]  # greys
    rgb[20:30] = 0
    hsv = rgb_to_hsv(rgb)
    expected = np.array([colorsys.rgb_to_hsv(*p) for p in rgb])
    np.testing.assert_allclose(hsv, expected, atol=1e-12)
    np.testing.assert_allclose(hsv_to_rgb(hsv), rgb, atol=1e-12)


def test_plasma_fractal_is_diamond_square():
    m = plasma_fractal(8, 2.0, np.random.RandomState(3))
    assert m.shape == (8, 8) and m.min() == 0 and m.max() == 1
    # one level by hand (size 2): the centre is a quarter of the 4 zero corners plus 100 U(-100, 100); each edge
    # midpoint a quarter of its 2 centres and 2 corners plus its own draw; then min-max scaled
    r = np.random.RandomState(3)
    c = 100 * r.uniform(-100, 100)
    top = 2 * c / 4 + 100 * r.uniform(-100, 100)
    left = 2 * c / 4 + 100 * r.uniform(-100, 100)
    hand = np.array([[0.0, top], [left, c]])
    np.testing.assert_allclose(plasma_fractal(2, 2.0, np.random.RandomState(3)), (hand - hand.min()) / np.ptp(hand))


def test_disk_kernel_is_the_normalised_disk():
    # sigma 0.1 leaves a 3x3 Gaussian at ~[0, 1, 0] (exp(-50) off-centre): the kernel is the disk over its 29 points
    k = disk_kernel(3, 0.1)
    yy, xx = np.mgrid[-8:9, -8:9]
    disk = (xx**2 + yy**2 <= 9).astype(np.float64)
    assert disk.sum() == 29
    np.testing.assert_allclose(k, disk / 29, atol=1e-7)
    assert disk_kernel(10, 0.5).shape == (21, 21)  # radius > 8: a grid of half-width 10 and a 5x5 blur


def test_seeded_and_independent_of_order():
    img = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    a = corrupt(img, "gaussian_noise", 2, image_rng(0, "gaussian_noise", 2, 7), "cifar")
    corrupt(img, "gaussian_noise", 2, image_rng(0, "gaussian_noise", 2, 8), "cifar")
    b = corrupt(img, "gaussian_noise", 2, image_rng(0, "gaussian_noise", 2, 7), "cifar")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, corrupt(img, "gaussian_noise", 2, image_rng(1, "gaussian_noise", 2, 7), "cifar"))
