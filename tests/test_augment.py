"""CutMix / Mixup / Cutout: statistics against exact expectations, exact label mixing, shapes, dtypes, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cutmix_transfer.augment import (
    MODES,
    BatchAugment,
    box_from_center,
    corrected_lambda,
    cut_size,
    cutout_masks,
    mixed_cross_entropy,
    rand_bbox,
)
from cutmix_transfer.errors import ConfigError

scipy_stats = pytest.importorskip("scipy.stats")


def _index_batch(b: int = 8, c: int = 3, h: int = 20, w: int = 24, dtype=torch.float32):
    """Image i is filled with the value i and has label i: every mixed pixel says where it came from."""
    labels = torch.arange(b)
    images = labels.to(dtype)[:, None, None, None].expand(b, c, h, w).contiguous()
    return images, labels


def _expected_clipped_length(cut: int, side: int) -> float:
    """Mean over every integer centre of the clipped length of [c - cut//2, c + cut//2) in [0, side)."""
    centres = np.arange(side)
    return float(np.mean(np.clip(centres + cut // 2, 0, side) - np.clip(centres - cut // 2, 0, side)))


def _expected_pasted_fraction(beta: float, side: int) -> float:
    """Exact E[pasted area / image area] of a square image: sum over cut sides c of P(c) * E[len | c]^2 / side^2.

    cut = int(side * sqrt(1 - lam)) == c  <=>  1 - ((c+1)/side)^2 < lam <= 1 - (c/side)^2, with lam ~ Beta.
    """
    total = 0.0
    for c in range(side + 1):
        hi = 1.0 - (c / side) ** 2
        lo = 1.0 - ((c + 1) / side) ** 2
        p = scipy_stats.beta.cdf(hi, beta, beta) - scipy_stats.beta.cdf(max(lo, 0.0), beta, beta)
        total += p * _expected_clipped_length(c, side) ** 2 / side**2
    return total


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_cutmix_mean_pasted_area_matches_exact_expectation(beta):
    side, n = 32, 6000
    aug = BatchAugment("cutmix", beta=beta, prob=1.0, seed=123)
    images, labels = _index_batch(2, 1, side, side)
    pasted = np.array([1.0 - aug(images, labels).lam for _ in range(n)])
    expected = _expected_pasted_fraction(beta, side)
    se = pasted.std() / np.sqrt(n)
    assert abs(pasted.mean() - expected) < 5 * se, (pasted.mean(), expected, se)
    # Clipping only removes area: the mean pasted area is below 1 - E[lambda] = 0.5.
    assert pasted.mean() < 0.5


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_unclipped_box_area_is_one_minus_mean_lambda(beta):
    """Before clipping the box covers 1 - lambda of the image (up to int rounding), so its mean is 1 - E[lam]."""
    side, n = 4096, 20000
    lams = scipy_stats.beta.ppf((np.arange(n) + 0.5) / n, beta, beta)  # an exact quantile grid of Beta(beta, beta)
    areas = [np.prod(cut_size(float(lam), side, side)) / side**2 for lam in lams]
    assert np.mean(areas) == pytest.approx(1.0 - lams.mean(), abs=2.0 / side)
    assert 1.0 - lams.mean() == pytest.approx(0.5, abs=1e-4)  # E[Beta(b, b)] = 1/2


def test_rand_bbox_clipped_inside_image_and_centre_uniform():
    rng = np.random.default_rng(0)
    w, h = 30, 17
    boxes = np.array([rand_bbox(0.3, w, h, rng) for _ in range(3000)])
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= w).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()
    cut_w, cut_h = cut_size(0.3, w, h)
    assert (cut_w, cut_h) == (int(w * np.sqrt(0.7)), int(h * np.sqrt(0.7)))
    # Unclipped boxes have exactly the cut size (2 * (cut // 2)), and every centre column is reachable.
    inner = (boxes[:, 0] > 0) & (boxes[:, 2] < w) & (boxes[:, 1] > 0) & (boxes[:, 3] < h)
    assert ((boxes[inner, 2] - boxes[inner, 0]) == 2 * (cut_w // 2)).all()
    assert set(((boxes[inner, 0] + boxes[inner, 2]) // 2).tolist()) == set(range(cut_w // 2 + 1, w - cut_w // 2))


def test_box_edges_and_lambda_extremes():
    assert box_from_center(0, 0, 10, 10, 20, 20) == (0, 0, 5, 5)
    assert box_from_center(19, 19, 10, 10, 20, 20) == (14, 14, 20, 20)
    assert cut_size(1.0, 20, 20) == (0, 0)
    assert cut_size(0.0, 20, 20) == (20, 20)
    assert corrected_lambda((0, 0, 20, 20), 20, 20) == 0.0
    assert corrected_lambda((3, 3, 3, 9), 20, 20) == 1.0
    with pytest.raises(ValueError):
        cut_size(1.5, 20, 20)


def test_cutmix_lambda_is_the_true_pixel_fraction_and_labels_are_exact():
    images, labels = _index_batch(8, 3, 20, 24)
    aug = BatchAugment("cutmix", beta=1.0, prob=1.0, seed=7)
    seen_partial = False
    for _ in range(50):
        out = aug(images, labels)
        for i in range(8):
            own = int((out.images[i] == i).sum()) / out.images[i].numel()  # exact pixel counts, in float64
            if out.target_b[i] == i:
                assert own == 1.0  # a self-partner keeps every pixel its own
            else:
                assert own == out.lam
                other = int((out.images[i] == out.target_b[i].float()).sum()) / out.images[i].numel()
                assert other == pytest.approx(1.0 - out.lam, abs=1e-12)
        assert torch.equal(out.target_a, labels)
        assert sorted(out.target_b.tolist()) == list(range(8))  # the partners are a permutation of the batch
        x0, y0, x1, y1 = out.box_xyxy
        assert out.lam == (20 * 24 - (x1 - x0) * (y1 - y0)) / (20 * 24)
        seen_partial |= 0.0 < out.lam < 1.0
    assert seen_partial
    assert torch.equal(images, _index_batch(8, 3, 20, 24)[0])  # the input is not modified


@pytest.mark.parametrize("mode", ["cutmix", "cutout"])
def test_inplace_equals_out_of_place(mode):
    images = torch.randn(6, 3, 16, 16)
    labels = torch.arange(6)
    ref = BatchAugment(mode, seed=4, cutout_size=8)(images, labels)
    work = images.clone()
    got = BatchAugment(mode, seed=4, cutout_size=8, inplace=True)(work, labels)
    assert got.images.data_ptr() == work.data_ptr()  # no copy of the batch
    assert torch.equal(got.images, ref.images) and got.lam == ref.lam and torch.equal(got.target_b, ref.target_b)


def test_cutmix_prob_applies_to_the_expected_share_of_batches():
    images, labels = _index_batch(4, 1, 8, 8)
    aug = BatchAugment("cutmix", beta=1.0, prob=0.5, seed=3)
    n = 2000
    mixed = sum(aug(images, labels).box_xyxy is not None for _ in range(n))
    assert abs(mixed / n - 0.5) < 5 * np.sqrt(0.25 / n)
    assert all(BatchAugment("cutmix", prob=0.0, seed=1)(images, labels).lam == 1.0 for _ in range(20))


def test_mixup_blends_with_partner_exactly():
    images, labels = _index_batch(6, 2, 5, 5)
    out = BatchAugment("mixup", beta=1.0, seed=11)(images, labels)
    expected = out.lam * labels.float() + (1 - out.lam) * out.target_b.float()
    assert torch.allclose(out.images[:, 0, 0, 0], expected)
    assert torch.allclose(out.images, expected[:, None, None, None].expand_as(images))


def test_cutout_masks_match_a_per_image_loop():
    centres = torch.tensor([[0, 0], [10, 5], [19, 11], [7, 3]])
    masks = cutout_masks(centres, 6, 12, 20)
    assert masks.shape == (4, 1, 12, 20) and masks.dtype == torch.bool
    for m, (cx, cy) in zip(masks, centres.tolist()):
        ref = torch.zeros(12, 20, dtype=torch.bool)
        ref[max(cy - 3, 0) : min(cy + 3, 12), max(cx - 3, 0) : min(cx + 3, 20)] = True
        assert torch.equal(m[0], ref)


def test_cutout_zeroes_one_square_per_image_and_keeps_labels():
    images = torch.ones(16, 3, 32, 32)
    labels = torch.arange(16)
    out = BatchAugment("cutout", cutout_size=16, seed=5)(images, labels)
    assert out.lam == 1.0 and torch.equal(out.target_a, labels) and torch.equal(out.target_b, labels)
    zeros = (out.images == 0).all(dim=1)  # (B, H, W): the same pixels in every channel
    assert torch.equal(zeros, (out.images == 0).any(dim=1))
    for z in zeros:
        ys, xs = torch.nonzero(z, as_tuple=True)
        area = int(z.sum())
        assert 0 < area <= 256
        assert area == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)  # one axis-aligned rectangle
    assert len({tuple(torch.nonzero(z)[0].tolist()) for z in zeros}) > 1  # boxes differ between images


def test_none_is_identity():
    images, labels = _index_batch(3)
    out = BatchAugment("none")(images, labels)
    assert out.images is images and out.lam == 1.0 and torch.equal(out.target_b, labels)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_shapes_dtypes_devices(mode, dtype):
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        images = torch.randn(5, 3, 16, 12, dtype=dtype, device=device)
        labels = torch.arange(5, device=device)
        out = BatchAugment(mode, seed=0)(images, labels)
        assert out.images.shape == images.shape and out.images.dtype == dtype
        assert out.images.device == images.device == out.target_b.device
        assert out.target_a.dtype == out.target_b.dtype == torch.int64
        assert isinstance(out.lam, float) and 0.0 <= out.lam <= 1.0


def test_mixed_cross_entropy_matches_two_terms():
    torch.manual_seed(0)
    logits = torch.randn(7, 5)
    a, b = torch.randint(0, 5, (7,)), torch.randint(0, 5, (7,))
    lam = 0.3
    expected = lam * F.cross_entropy(logits, a) + (1 - lam) * F.cross_entropy(logits, b)
    assert torch.allclose(mixed_cross_entropy(logits, a, b, lam), expected)
    assert torch.allclose(mixed_cross_entropy(logits, a, b, 1.0), F.cross_entropy(logits, a))


def test_same_seed_same_batches():
    images, labels = _index_batch(8)
    a, b = BatchAugment("cutmix", seed=9), BatchAugment("cutmix", seed=9)
    for _ in range(5):
        oa, ob = a(images, labels), b(images, labels)
        assert torch.equal(oa.images, ob.images) and oa.lam == ob.lam


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mode="cutmixx"),
        dict(mode="cutmix", beta=0.0),
        dict(mode="none", prob=1.5),
        dict(mode="cutout", cutout_size=0),
    ],
)
def test_bad_config_rejected(kwargs):
    with pytest.raises(ConfigError):
        BatchAugment(**kwargs)


def test_bad_shapes_rejected():
    with pytest.raises(ValueError, match="B, C, H, W"):
        BatchAugment("cutmix")(torch.zeros(3, 8, 8), torch.arange(3))
    with pytest.raises(ValueError, match="labels"):
        BatchAugment("cutmix")(torch.zeros(3, 1, 8, 8), torch.arange(4))
