"""Robustness tests (cutmix_transfer.robustness, tools/robustness_eval.py) against independent computations:
FGSM against per-image autograd on a tiny float64 model, occlusion masks and in-between images against hand-built
arrays, the batched curves against a per-image loop, the tool's numbers against a hand-written pipeline, torchrun
against one process, and every user error as a one-line exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision
from helpers import REPO, EvalTool, eval_args, one_line_error, read_csv
from PIL import Image
from torchvision.transforms import functional as TF

from cutmix_transfer.backbones import build_model
from cutmix_transfer.datasets.cub import load_cub
from cutmix_transfer.datasets.imagenet import load_imagenet_val
from cutmix_transfer.distributed import rank_batches
from cutmix_transfer.errors import ConfigError, DatasetError
from cutmix_transfer.robustness import (
    PixelClassifier,
    check_eps,
    cutmix_images,
    cutmix_predictions,
    cutmix_ratio,
    draw_pairs,
    fgsm_perturb,
    fgsm_predictions,
    fill_value,
    hit_rates,
    input_gradient_sign,
    mixup_images,
    mixup_predictions,
    occlude,
    occlusion_mask,
    occlusion_predictions,
    scale_sides,
    top1_accuracy,
    top1_error,
)
from cutmix_transfer.robustness.attacks import eps_key
from cutmix_transfer.robustness.evaluate import select_images
from cutmix_transfer.robustness.inbetween import check_ratios
from cutmix_transfer.robustness.occlusion import check_sides

TOOL = EvalTool(REPO / "tools" / "robustness_eval.py")
NUM_CLASSES = 4  # conftest.DEMO_KWARGS
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


# ------------------------------------------------------------------------------------------------ helpers
class TinyNet(nn.Module):
    """conv 3x3 -> ReLU -> conv 3x3 -> GAP -> fc: small, float64, but a real nonlinear classifier."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.c1, self.c2, self.fc = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 8, 3, padding=1), nn.Linear(8, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.c2(torch.relu(self.c1(x)))).mean(dim=(2, 3)))


def _tiny(seed: int = 0, k: int = 3) -> tuple[TinyNet, PixelClassifier]:
    torch.manual_seed(seed)
    net = TinyNet(k).double().eval()
    return net, PixelClassifier(net, MEAN.tolist(), STD.tolist()).double().eval()


def _normalise_by_hand(x: torch.Tensor) -> torch.Tensor:
    m = torch.from_numpy(MEAN).view(1, 3, 1, 1).to(x.dtype)
    s = torch.from_numpy(STD).view(1, 3, 1, 1).to(x.dtype)
    return (x - m) / s


def _imagenet_args(backbone: Path, root: Path) -> list[str]:
    """The tool's arguments for `backbone` on the ImageNet val layout at `root`."""
    return ["--backbone", str(backbone), "--dataset", "imagenet", "--data-root", str(root)]


# ------------------------------------------------------------------------------------------------ FGSM
def test_fgsm_matches_per_image_autograd_with_clipping_and_accuracy():
    net, model = _tiny(0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 3, 10, 10, generator=g, dtype=torch.float64)
    x[:, :, :2] = 0.0  # pixels at the bounds: the clip must act there
    x[:, :, -2:] = 1.0
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    eps = [0.5, 8.0, 64.0]
    sign, logits = input_gradient_sign(model, x, y)
    _, preds = fgsm_predictions(model, x, y, eps)
    for i in range(len(x)):  # independent: one image at a time, normalised by hand, its own loss
        xi = x[i : i + 1].clone().requires_grad_(True)
        out = net(_normalise_by_hand(xi))
        loss = nn.functional.cross_entropy(out, y[i : i + 1])
        (gi,) = torch.autograd.grad(loss, xi)
        torch.testing.assert_close(logits[i], out[0].detach())
        torch.testing.assert_close(sign[i], gi[0].sign(), rtol=0, atol=0)
        for k, e in enumerate(eps):
            adv_hand = torch.clamp(x[i] + e / 255.0 * gi[0].sign(), 0.0, 1.0)
            adv = fgsm_perturb(x[i : i + 1], sign[i : i + 1], e)[0]
            torch.testing.assert_close(adv, adv_hand, rtol=0, atol=0)
            assert int(net(_normalise_by_hand(adv_hand[None])).argmax()) == int(preds[i, k])
    adv = fgsm_perturb(x, sign, 64.0)
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    clipped = x + 64 / 255 * sign != adv
    assert clipped.any() and ((adv[clipped] == 0) | (adv[clipped] == 1)).all()
    moved = ~clipped & (sign != 0)
    torch.testing.assert_close((adv - x).abs()[moved], torch.full_like(adv[moved], 64 / 255))
    # accuracy: hand count of correct predictions per eps
    hand = [100.0 * sum(int(preds[i, k]) == int(y[i]) for i in range(len(y))) / len(y) for k in range(len(eps))]
    assert top1_accuracy(preds.numpy(), y.numpy()) == pytest.approx(hand)


def test_fgsm_in_the_normalized_space_against_autograd_on_the_normalised_input():
    """--fgsm-space normalized: the step eps/255 is taken on z = (x - mean) / std, with the gradient with respect
    to z, and nothing is clipped; computed here on z directly, one image at a time."""
    net, model = _tiny(4)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(5, 3, 10, 10, generator=g, dtype=torch.float64)
    x[:, :, :2] = 0.0  # at the bounds: a pixel-space attack would clip here, this one must not
    x[:, :, -2:] = 1.0
    y = torch.tensor([0, 1, 2, 0, 1])
    eps = [2.0, 8.0, 64.0]
    sign, _ = input_gradient_sign(model, x, y)
    _, preds = fgsm_predictions(model, x, y, eps, "normalized")
    # the normalisation the model gets: ImageNet's, as the model stores it (float32 values, here in float64)
    mean, std = model.mean, model.std
    torch.testing.assert_close(std.flatten(), torch.from_numpy(STD), rtol=1e-7, atol=0)
    for i in range(len(x)):
        z = ((x[i : i + 1] - mean) / std).detach().requires_grad_(True)
        loss = nn.functional.cross_entropy(net(z), y[i : i + 1])
        (gz,) = torch.autograd.grad(loss, z)
        for k, e in enumerate(eps):
            z_adv = z.detach() + e / 255.0 * gz.sign()
            adv = fgsm_perturb(x[i : i + 1], sign[i : i + 1], e, "normalized", model.std)
            torch.testing.assert_close((adv - mean) / std, z_adv, rtol=0, atol=1e-12)
            torch.testing.assert_close(adv, z_adv * std + mean, rtol=0, atol=1e-12)
            assert int(net(z_adv).argmax()) == int(preds[i, k])
    adv = fgsm_perturb(x, sign, 64.0, "normalized", model.std)
    assert float(adv.min()) < 0.0 and float(adv.max()) > 1.0  # not clipped
    # 8/255 on the normalised input is std * 8/255 in pixels: about 1.8/255 with ImageNet's std
    step = (fgsm_perturb(x, sign, 8.0, "normalized", model.std) - x).abs()[sign != 0]
    assert 1.5 < float(step.mean()) * 255 < 2.0
    with pytest.raises(ConfigError, match="--fgsm-space"):
        fgsm_perturb(x, sign, 8.0, "logits")


def test_fgsm_gradient_of_an_image_does_not_depend_on_its_batch():
    _, model = _tiny(3)
    x = torch.rand(5, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])
    full, _ = input_gradient_sign(model, x, y)
    part, _ = input_gradient_sign(model, x[2:4], y[2:4])
    torch.testing.assert_close(full[2:4], part, rtol=0, atol=0)


def test_gradient_sign_of_an_image_is_its_own_even_when_tiny():
    """The loss is summed, not averaged: a gradient near float32's smallest numbers keeps its sign in a batch of 64
    (divided by 64 it would round to 0 and the pixel would not move)."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 2, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1e-44] * 12, [-1e-44] * 12]))
    model = PixelClassifier(net, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    x = torch.rand(64, 3, 2, 2)
    y = torch.zeros(64, dtype=torch.int64)
    alone, _ = input_gradient_sign(model, x[:1], y[:1])
    batch, _ = input_gradient_sign(model, x, y)
    assert alone.abs().sum() == 12 and torch.equal(batch[:1], alone)


@pytest.mark.parametrize("bad", [0, -1, 255.5, float("nan"), float("inf")])
def test_eps_outside_range_is_refused(bad):
    with pytest.raises(ConfigError, match=r"\(0, 255\]"):
        check_eps([8, bad])


def test_eps_accepted():
    assert check_eps([0.5, 8, 255]) == [0.5, 8.0, 255.0]


def test_eps_values_that_are_not_numbers_are_refused_and_keys_name_them():
    for bad in ("abc", None, "8/255"):
        with pytest.raises(ConfigError, match=r"\(0, 255\]"):
            check_eps([bad])
    assert [eps_key(e) for e in (8, 0.5, "2", 8.0)] == ["eps8", "eps0.5", "eps2", "eps8"]


def test_fgsm_step_where_the_gradient_sign_is_zero_and_with_a_float32_std():
    """A zero gradient sign leaves the pixel where it is in both spaces; the normalised step uses the model's
    float32 std at the pixels' precision (float64 here): x + (eps / 255 * std) * sign, to the last bit."""
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64) * 0.5 + 0.25
    sign = torch.randint(-1, 2, x.shape).to(torch.float64)
    sign[0, :, 0, 0] = 0.0
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    for space in ("pixels", "normalized"):
        adv = fgsm_perturb(x, sign, 8.0, space, std)
        assert torch.equal(adv[0, :, 0, 0], x[0, :, 0, 0]) and torch.isfinite(adv).all()
    want = x + (8.0 / 255.0 * std.to(torch.float64)) * sign
    assert torch.equal(fgsm_perturb(x, sign, 8.0, "normalized", std), want)
    assert torch.equal(fgsm_perturb(x, sign, 8.0, "pixels"), (x + 8.0 / 255.0 * sign).clamp(0, 1))


def test_pixel_classifier_buffers_and_dtypes():
    """mean / std are (1, 3, 1, 1) float32 buffers outside the state dict (the checkpoint's weights alone), and the
    input is normalised at the input's own precision."""
    net = nn.Conv2d(3, 2, 1)
    model = PixelClassifier(net, np.array(MEAN, dtype=np.float64), np.array(STD, dtype=np.float64))
    for buf in (model.mean, model.std):
        assert buf.shape == (1, 3, 1, 1) and buf.dtype == torch.float32
    assert list(model.state_dict()) == ["net.weight", "net.bias"]
    ident = PixelClassifier(nn.Identity(), MEAN.tolist(), STD.tolist())
    x = torch.rand(1, 3, 2, 2).half()
    out = ident(x)
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), _normalise_by_hand(x.float()), rtol=2e-3, atol=2e-3)


def test_fgsm_predictions_without_eps_and_on_a_model_without_std():
    net, model = _tiny(4)
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    logits, preds = fgsm_predictions(model, x, y, [])
    assert preds.shape == (3, 0) and preds.dtype == torch.int64 and logits.shape == (3, 3)
    # a classifier taking pixels without a std attribute: the pixel space needs none
    plain = nn.Sequential(model)
    _, p1 = fgsm_predictions(plain, x, y, [8.0])
    _, p2 = fgsm_predictions(model, x, y, [8.0])
    assert torch.equal(p1, p2)


# ------------------------------------------------------------------------------------------------ occlusion
def test_occlusion_against_hand_built_arrays():
    x = torch.arange(1, 1 + 2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    keep_center = np.ones((5, 5))
    keep_center[1:4, 1:4] = 0  # side 3 in 5: start (5 - 3) // 2 = 1
    torch.testing.assert_close(occlude(x, 3, "center"), x * torch.from_numpy(keep_center).float())
    torch.testing.assert_close(occlude(x, 3, "boundary"), x * torch.from_numpy(1 - keep_center).float())
    keep_even = np.ones((5, 5))
    keep_even[1:3, 1:3] = 0  # side 2 in 5: start 1, the odd pixel goes below / right
    torch.testing.assert_close(occlude(x, 2, "center"), x * torch.from_numpy(keep_even).float())
    torch.testing.assert_close(occlude(x, 0, "center"), x)
    torch.testing.assert_close(occlude(x, 5, "boundary"), x)
    assert float(occlude(x, 5, "center").abs().sum()) == 0 and float(occlude(x, 0, "boundary").abs().sum()) == 0
    for mode in ("center", "boundary"):
        for side in range(6):
            torch.testing.assert_close(occlude(x, side, mode), x * occlusion_mask(5, side, mode))
    assert torch.equal(x, torch.arange(1, 151, dtype=torch.float32).view(2, 3, 5, 5))  # input untouched


def test_check_sides_and_occlusion_input_checks():
    assert check_sides([0, 224, 16.0, "32"]) == [0, 224, 16, 32] and check_sides([1], "--cutmix-sides") == [1]
    for bad in ([-1], [225], [16.5], [0, 16, 0], []):
        with pytest.raises(ConfigError, match="^--hole-sizes "):
            check_sides(bad)
    with pytest.raises(ConfigError, match="^--cutmix-sides 300: "):
        check_sides([300], "--cutmix-sides")
    for shape in ((1, 3, 4, 6), (3, 4, 6)):  # not square, batched or one image
        with pytest.raises(ValueError, match="square images expected"):
            occlude(torch.zeros(shape), 2, "center")
    one = occlude(torch.ones(3, 4, 4), 2, "center")  # one (C, S, S) image
    assert one.shape == (3, 4, 4) and one[:, 1:3, 1:3].eq(0).all() and one.sum() == 3 * 12
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert occlusion_mask(4, 2, "center").dtype == torch.float32  # float32 whatever the default dtype
    finally:
        torch.set_default_dtype(default)


def test_mean_fill_against_hand_built_arrays():
    """--occlusion-fill mean: the occluded pixels take the normalisation's mean colour, i.e. 0 in the normalised
    input (Cutout's code zeroes the normalised tensor); black is pixel 0."""
    x = torch.arange(1, 1 + 2 * 3 * 4 * 4, dtype=torch.float64).view(2, 3, 4, 4) / 100.0
    _, model = _tiny(0)
    fill = fill_value("mean", model.mean)
    centre = x.numpy().copy()
    boundary = np.empty_like(centre)
    for c in range(3):  # side 2 in 4: rows / cols 1..2
        centre[:, c, 1:3, 1:3] = MEAN[c]
        boundary[:, c] = MEAN[c]
    boundary[:, :, 1:3, 1:3] = x.numpy()[:, :, 1:3, 1:3]
    torch.testing.assert_close(occlude(x, 2, "center", fill), torch.from_numpy(centre))
    torch.testing.assert_close(occlude(x, 2, "boundary", fill), torch.from_numpy(boundary))
    # exactly 0 in the input the model gets (its own stored statistics: ImageNet's as float32 values)
    z = (occlude(x, 2, "center", fill) - model.mean) / model.std
    assert float(z[..., 1:3, 1:3].abs().max()) == 0.0 and float(z[..., 0, :].abs().min()) > 0
    black = x.numpy().copy()
    black[..., 1:3, 1:3] = 0.0
    torch.testing.assert_close(occlude(x, 2, "center", fill_value("black")), torch.from_numpy(black))
    torch.testing.assert_close(occlude(x, 0, "boundary", fill), torch.from_numpy(MEAN).view(1, 3, 1, 1).expand_as(x))
    with pytest.raises(ConfigError, match="--occlusion-fill"):
        fill_value("grey")


def test_sides_scale_with_the_image_size():
    assert scale_sides([0, 16, 112, 224], 224) == [0, 16, 112, 224]
    assert scale_sides([0, 16, 112, 224], 96) == [0, 7, 48, 96]  # round(16 * 96 / 224) = round(6.86) = 7


# ------------------------------------------------------------------------------------------------ in-between
def test_inbetween_images_against_hand_built_arrays():
    a = torch.full((2, 3, 4, 4), 0.2, dtype=torch.float64)
    b = torch.full((2, 3, 4, 4), 0.8, dtype=torch.float64)
    # lambda is the share of the first image a (Appendix E.1: x = lambda x_A + (1 - lambda) x_B)
    torch.testing.assert_close(mixup_images(a, b, 0.25), torch.full_like(a, 0.25 * 0.2 + 0.75 * 0.8))
    assert torch.equal(mixup_images(a, b, 1.0), a) and torch.equal(mixup_images(a, b, 0.0), b)
    # the same images, bit for bit, as record version 1 built at its ratio r = 1 - lambda (torch.lerp(a, b, r)):
    # the demo's grid (0, 0.25, ..., 1) gives the same predictions, only the direction of lambda flips
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g)
    for lam, r in ((0.25, 0.75), (0.5, 0.5), (0.75, 0.25)):
        assert torch.equal(mixup_images(x, y, lam), torch.lerp(x, y, r))
    expect = np.full((2, 3, 4, 4), 0.2)
    expect[..., 1:3, 1:3] = 0.8  # side 2 in 4: rows / cols 1..2 from b
    torch.testing.assert_close(cutmix_images(a, b, 2), torch.from_numpy(expect))
    assert torch.equal(cutmix_images(a, b, 4), b) and torch.equal(cutmix_images(a, b, 0), a)
    assert cutmix_ratio(2, 4) == 0.75 and cutmix_ratio(48, 96) == 0.75  # a keeps 3/4 of its area
    assert cutmix_ratio(0, 4) == 1.0 and cutmix_ratio(4, 4) == 0.0


def test_check_ratios_and_mixup_ends():
    assert check_ratios([0, "0.5", 1.0, 0.25]) == [0.0, 0.5, 1.0, 0.25]
    for bad in ([-0.1], [1.5], [float("nan")], [float("inf")], [0.5, 0.5], []):
        with pytest.raises(ConfigError, match="^--mixup-ratios "):
            check_ratios(bad)
    with pytest.raises(ConfigError, match=r"^--mixup-ratios 2: .*\[0, 1\]"):
        check_ratios([0.5, 2])
    a, b = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    for lam, src in ((0.0, b), (1.0, a), (-0.0, b)):
        out = mixup_images(a, b, lam)
        assert torch.equal(out, src) and out.data_ptr() != src.data_ptr()  # a copy, never the input itself
    assert torch.equal(mixup_images(a, b, 0.75), torch.full_like(a, 0.25))  # the share of a: 3/4 of 0, 1/4 of 1


def test_pairs_are_seeded_and_of_different_classes():
    labels = [0, 0, 1, 1, 2, 2, 2]
    p = draw_pairs(labels, 200, 5)
    assert p.shape == (200, 2)
    assert all(labels[i] != labels[j] for i, j in p)
    np.testing.assert_array_equal(p, draw_pairs(labels, 200, 5))
    assert not np.array_equal(p, draw_pairs(labels, 200, 6))
    assert set(p.ravel().tolist()) == set(range(7))
    with pytest.raises(DatasetError, match="two classes"):
        draw_pairs([3, 3, 3], 4, 0)


def test_hit_rates_hand_counted():
    la, lb = np.array([0, 1, 2, 3]), np.array([5, 6, 7, 8])
    ratios = [0.8, 0.5, 0.2]  # lambda: the share of a
    preds = np.array(
        [
            [0, 0, 5],  # a, a, b
            [6, 6, 6],  # b, b, b
            [9, 2, 9],  # neither, a, neither
            [3, 9, 9],
        ]
    )  # a, neither, neither
    r = hit_rates(preds, la, lb, ratios)
    assert r["either"] == [75.0, 75.0, 50.0]
    assert r["neither"] == [25.0, 25.0, 50.0]
    # dominant: lam 0.8 -> a (rows 0, 3); 0.5 -> either class counts (rows 0, 1, 2); 0.2 -> b (rows 0, 1)
    assert r["dominant"] == [50.0, 75.0, 50.0]
    # one sample predicted as a at every lambda: dominant only where a has the larger share (or they tie)
    one = hit_rates(np.array([[4, 4, 4, 4]]), [4], [1], [0.0, 0.25, 0.5, 1])
    assert one == {"either": [100.0] * 4, "dominant": [0.0, 0.0, 100.0, 100.0], "neither": [0.0] * 4}
    assert hit_rates(np.array([[1], [2]]), [1, 1], [3, 3], [0.5])["either"] == [50.0]


def test_pairs_are_numpys_draws_with_redraws_and_two_classes_suffice():
    """The pairs written out from the documented rule: numpy's default_rng(seed), first and second positions
    uniform over the images, then each second whose class equals its first's drawn again until none does."""
    labels = np.array([0, 0, 1, 1, 1, 2, 0, 2])
    rng = np.random.default_rng(41)
    first, second = rng.integers(0, 8, size=300), rng.integers(0, 8, size=300)
    while (labels[first] == labels[second]).any():
        clash = labels[first] == labels[second]
        second[clash] = rng.integers(0, 8, size=int(clash.sum()))
    np.testing.assert_array_equal(draw_pairs(labels.tolist(), 300, 41), np.stack([first, second], axis=1))
    two = draw_pairs([7, 9], 6, 0)  # two classes are enough
    assert {tuple(p) for p in two.tolist()} <= {(0, 1), (1, 0)}


def test_cutmix_images_need_square_images_and_mixup_beyond_the_ends():
    a, b = torch.zeros(1, 3, 4, 6), torch.ones(1, 3, 4, 6)
    for x, y in ((a, b), (a[0], b[0])):
        with pytest.raises(ValueError, match="square images expected"):
            cutmix_images(x, y, 2)
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    one = cutmix_images(a[0], b[0], 2)  # one (C, S, S) image
    assert one.sum() == 3 * 4 and one[:, 1:3, 1:3].eq(1).all()
    assert torch.equal(mixup_images(a, b, 1.5), a) and torch.equal(mixup_images(a, b, -0.5), b)


# ------------------------------------------------------------------------------------------------ curves
def test_curves_equal_a_per_image_loop():
    _, model = _tiny(7, k=4)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, 3, 12, 12, generator=g, dtype=torch.float64)
    y = np.array([0, 1, 2, 3, 1])
    sides = [0, 3, 6, 12]
    for mode in ("center", "boundary"):
        batched = occlusion_predictions(model, x, sides, mode).numpy()
        loop = np.zeros_like(batched)
        for i in range(len(x)):
            for t, s in enumerate(sides):
                img = x[i].numpy().copy()
                a = (12 - s) // 2
                if mode == "center":
                    img[:, a : a + s, a : a + s] = 0
                else:
                    keep = np.zeros_like(img)
                    keep[:, a : a + s, a : a + s] = img[:, a : a + s, a : a + s]
                    img = keep
                loop[i, t] = int(model(torch.from_numpy(img)[None]).argmax())
        np.testing.assert_array_equal(batched, loop)
        hand_err = [100.0 * np.mean(loop[:, t] != y) for t in range(len(sides))]
        assert top1_error(batched, y) == pytest.approx(hand_err)
    b = torch.flip(x, dims=[0])
    yb = y[::-1]
    ratios = [0.0, 0.3, 0.5, 1.0]
    mix = mixup_predictions(model, x, b, ratios).numpy()
    cut = cutmix_predictions(model, x, b, sides).numpy()
    for i in range(len(x)):
        for t, r in enumerate(ratios):
            img = r * x[i].numpy() + (1 - r) * b[i].numpy()
            assert mix[i, t] == int(model(torch.from_numpy(img)[None]).argmax())
        for t, s in enumerate(sides):
            img = x[i].numpy().copy()
            a = (12 - s) // 2
            img[:, a : a + s, a : a + s] = b[i].numpy()[:, a : a + s, a : a + s]
            assert cut[i, t] == int(model(torch.from_numpy(img)[None]).argmax())
    either = [100.0 * np.mean((mix[:, t] == y) | (mix[:, t] == yb)) for t in range(len(ratios))]
    assert hit_rates(mix, y, yb, ratios)["either"] == pytest.approx(either)


class _Brightness(nn.Module):
    """Class 0 when an image's mean pixel is above 0.5, else class 1 (a classifier a fill colour can flip)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([m, torch.full_like(m, 0.5)], dim=1)


def test_curves_of_an_empty_grid_the_fill_and_one_column_accuracy():
    model = _Brightness()
    x = torch.full((3, 3, 4, 4), 0.6)
    for preds in (
        occlusion_predictions(model, x, [], "center"),
        mixup_predictions(model, x, x, []),
        cutmix_predictions(model, x, x, []),
    ):
        assert preds.shape == (3, 0) and preds.dtype == torch.int64
    # the whole image occluded: black (the default) turns every image dark, a white fill keeps them bright
    assert occlusion_predictions(model, x, [4], "center").tolist() == [[1]] * 3
    assert occlusion_predictions(model, x, [4], "center", 1.0).tolist() == [[0]] * 3
    assert occlusion_predictions(model, x, [0], "boundary", torch.ones(1, 3, 1, 1)).tolist() == [[0]] * 3
    assert top1_accuracy(np.array([1, 2, 3, 3]), np.array([1, 3, 3, 0])) == [50.0]  # (N,) -> one column
    assert top1_accuracy(np.array([[1, 2]]), np.array([1])) == [100.0, 0.0] and top1_error([[4]], [4]) == [0.0]


def test_batches_shard_whole_batches_and_subsets_are_seeded():
    items = list(range(10))
    assert rank_batches(items, 3, 0, 1) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert rank_batches(items, 3, 0, 2) == [[0, 1, 2], [6, 7, 8]]
    assert rank_batches(items, 3, 1, 2) == [[3, 4, 5], [9]]
    assert select_images(10, None, 0) == items and select_images(10, 20, 0) == items
    sub = select_images(100, 7, 3)
    assert len(sub) == 7 == len(set(sub)) and sub == sorted(sub) and sub == select_images(100, 7, 3)
    assert sub != select_images(100, 7, 4)


# ------------------------------------------------------------------------------------------------ the tool
@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """4-class ResNet-18 checkpoints: a torchvision state dict (standard form), this project's own format saying
    wsol=True, and a 5-class one."""

    d = tmp_path_factory.mktemp("rob_ckpt")
    torch.manual_seed(11)
    plain = build_model("resnet18", NUM_CLASSES)
    for m in plain.modules():  # non-trivial BN statistics, so the predictions vary between images
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    torch.save(plain.state_dict(), d / "baseline_r18.pth")
    sd = {"backbone." + k: v for k, v in plain.state_dict().items()}
    meta = {
        "epoch": 4,
        "cutmix_transfer": {"arch": "resnet18", "method": "cutmix", "num_classes": NUM_CLASSES, "wsol": True},
    }
    torch.save({"meta": meta, "state_dict": sd}, d / "ours_wsol.pth")
    torch.manual_seed(12)
    torch.save(build_model("resnet18", 5).state_dict(), d / "five.pth")
    return {"plain": d / "baseline_r18.pth", "wsol": d / "ours_wsol.pth", "five": d / "five.pth"}


GRID = [
    "--eps",
    "2",
    "8",
    "--hole-sizes",
    "0",
    "56",
    "112",
    "224",
    "--mixup-ratios",
    "0",
    "0.5",
    "1",
    "--cutmix-sides",
    "0",
    "112",
    "224",
    "--pairs",
    "6",
    "--image-size",
    "64",
    "--batch-size",
    "3",
]


@pytest.fixture(scope="module")
def single_run(demo_root, ckpts, tmp_path_factory) -> Path:
    """The tool in-process on the demo ImageNet val (8 images), one intra-op thread as each torchrun worker."""
    out = tmp_path_factory.mktemp("rob_single")
    rc = TOOL.run_single_threaded(eval_args("--backbone", ckpts["plain"], "imagenet", demo_root / "ILSVRC", out, *GRID))
    assert rc == 0
    return out


def _hand_pixels(path: Path, size: int) -> torch.Tensor:
    """Resize the short side to round(size / 0.875), centre crop `size`, [0, 1]: written out with torchvision's
    functional ops."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    return TF.to_tensor(TF.center_crop(TF.resize(rgb, round(size / 0.875)), size))


def test_tool_numbers_equal_a_hand_written_pipeline(single_run, demo_root, ckpts):

    rec = json.loads((single_run / "results.json").read_text())
    assert rec["kind"] == "robustness" and rec["protocol"]["wsol_form"] is False
    samples = load_imagenet_val(demo_root / "ILSVRC")
    assert rec["num_images"] == len(samples) == 8
    net = torchvision.models.resnet18(num_classes=NUM_CLASSES)
    net.load_state_dict(torch.load(ckpts["plain"], weights_only=True))
    net.eval()
    x = torch.stack([_hand_pixels(s.path, 64) for s in samples])
    y = torch.tensor([s.label for s in samples])
    with torch.no_grad():
        clean = net(_normalise_by_hand(x).float()).argmax(1)
    assert rec["metrics"]["clean_top1"] == pytest.approx(100.0 * float((clean == y).float().mean()))
    # FGSM per image: the gradient of each image's own loss (the tool sums the batch's losses)
    xg = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(net(_normalise_by_hand(xg).float()), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, xg)
    rows = read_csv(single_run / "per_image.csv")
    assert [int(r["index"]) for r in rows] == list(range(8))
    assert [int(r["clean_pred"]) for r in rows] == clean.tolist()
    for e in (2, 8):
        with torch.no_grad():
            adv = net(_normalise_by_hand((x + e / 255 * grad.sign()).clamp(0, 1)).float()).argmax(1)
        assert [int(r[f"fgsm_pred_eps{e}"]) for r in rows] == adv.tolist()
        assert rec["metrics"][f"fgsm_top1_eps{e}"] == pytest.approx(100.0 * float((adv == y).float().mean()))
    # occlusion: sides 0 56 112 224 of the 224 frame are 0 16 32 64 at 64 px
    occ = rec["curves"]["occlusion"]
    assert occ["hole_sizes_px"] == [0, 16, 32, 64]
    for mode, key in (("center", "center_top1_err"), ("boundary", "boundary_top1_err")):
        errs = []
        for s in occ["hole_sizes_px"]:
            m = torch.ones(64, 64) if mode == "center" else torch.zeros(64, 64)
            a = (64 - s) // 2
            m[a : a + s, a : a + s] = 0 if mode == "center" else 1
            with torch.no_grad():
                p = net(_normalise_by_hand(x * m).float()).argmax(1)
            errs.append(100.0 * float((p != y).float().mean()))
        assert occ[key] == pytest.approx(errs)
    # in-between: the pairs in predictions.npz, of different classes, rebuilt and classified by hand
    with np.load(single_run / "predictions.npz") as z:
        pairs, mix, cut = z["pairs"], z["mixup_pred"], z["cutmix_pred"]
    assert pairs.shape == (6, 2) and all(samples[i].label != samples[j].label for i, j in pairs)
    ib = rec["curves"]["inbetween"]
    assert ib["num_pairs"] == 6 and ib["cutmix"]["ratios"] == [1.0, 0.75, 0.0]  # lambda: the share of x_A
    xa, xb = x[pairs[:, 0]], x[pairs[:, 1]]
    la, lb = y[pairs[:, 0]].numpy(), y[pairs[:, 1]].numpy()
    for t, r in enumerate([0.0, 0.5, 1.0]):
        with torch.no_grad():
            p = net(_normalise_by_hand(r * xa + (1 - r) * xb).float()).argmax(1).numpy()
        np.testing.assert_array_equal(mix[:, t], p)
        assert ib["mixup"]["either"][t] == pytest.approx(100.0 * np.mean((p == la) | (p == lb)))
    for t, s in enumerate([0, 32, 64]):
        img = xa.clone()
        a = (64 - s) // 2
        img[..., a : a + s, a : a + s] = xb[..., a : a + s, a : a + s]
        with torch.no_grad():
            p = net(_normalise_by_hand(img).float()).argmax(1).numpy()
        np.testing.assert_array_equal(cut[:, t], p)
        dom = p == (la if s * s < 64 * 64 / 2 else lb)
        assert ib["cutmix"]["dominant"][t] == pytest.approx(100.0 * np.mean(dom))
    assert (single_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(rec["checkpoint"]["sha256"]) == 64


def test_tool_normalized_fgsm_and_mean_fill_use_the_models_normalisation(single_run, demo_root, ckpts, tmp_path):
    out = tmp_path / "normalized_mean"
    grid = ["--tests", "fgsm", "occlusion", "--eps", "8", "--hole-sizes", "0", "112", "224"]
    opts = ["--image-size", "64", "--batch-size", "3", "--fgsm-space", "normalized", "--occlusion-fill", "mean"]
    args = eval_args("--backbone", ckpts["plain"], "imagenet", demo_root / "ILSVRC", out, *grid, *opts)
    assert TOOL.run_single_threaded(args) == 0
    rec = json.loads((out / "results.json").read_text())
    proto, base = rec["protocol"], json.loads((single_run / "results.json").read_text())["protocol"]
    assert rec["record_version"] == 2 and (proto["fgsm_space"], proto["occlusion_fill"]) == ("normalized", "mean")
    assert proto["fgsm_clip"] is None and (base["fgsm_space"], base["fgsm_clip"]) == ("pixels", "[0, 1]")
    assert base["occlusion_fill"] == "black" and base["inbetween_lambda"] == "share_of_first_image"
    assert proto["normalize_mean"] == pytest.approx(list(MEAN)) and proto["normalize_std"] == pytest.approx(list(STD))
    assert {k for k in proto if proto[k] != base[k]} == {"fgsm_space", "fgsm_clip", "occlusion_fill"}
    samples = load_imagenet_val(demo_root / "ILSVRC")
    net = torchvision.models.resnet18(num_classes=NUM_CLASSES)
    net.load_state_dict(torch.load(ckpts["plain"], weights_only=True))
    net.eval()
    x = torch.stack([_hand_pixels(s.path, 64) for s in samples])
    y = torch.tensor([s.label for s in samples])
    # FGSM on the normalised input itself: z + 8/255 sign(grad_z), no clip
    z = _normalise_by_hand(x).float().requires_grad_(True)
    (gz,) = torch.autograd.grad(nn.functional.cross_entropy(net(z), y, reduction="sum"), z)
    with torch.no_grad():
        adv = net(z.detach() + 8 / 255 * gz.sign()).argmax(1)
    rows = read_csv(out / "per_image.csv")
    assert [int(r["fgsm_pred_eps8"]) for r in rows] == adv.tolist()
    # occlusion: the hole is 0 in the normalised input (the mean colour in pixels)
    errs = []
    for s in (0, 32, 64):
        zz = _normalise_by_hand(x).float()
        a = (64 - s) // 2
        zz[..., a : a + s, a : a + s] = 0.0
        with torch.no_grad():
            errs.append(100.0 * float((net(zz).argmax(1) != y).float().mean()))
    assert rec["curves"]["occlusion"]["center_top1_err"] == pytest.approx(errs)


def test_form_follows_the_checkpoint_meta_and_the_flags(demo_root, ckpts, tmp_path):
    main = TOOL.main()
    base = [
        "--dataset",
        "imagenet",
        "--data-root",
        str(demo_root / "ILSVRC"),
        "--tests",
        "fgsm",
        "--image-size",
        "64",
        "--workers",
        "0",
        "--no-progress",
    ]
    forms = {}
    for name, ckpt, extra in (
        ("meta", "wsol", []),
        ("forced", "plain", ["--wsol"]),
        ("standard", "wsol", ["--standard-form"]),
    ):
        out = tmp_path / name
        assert main(["--backbone", str(ckpts[ckpt]), "--out", str(out), *base, *extra]) == 0
        rec = json.loads((out / "results.json").read_text())
        forms[name] = (rec["protocol"]["wsol_form"], rec["model_form"]["form_source"])
        assert rec["num_pairs"] == 0 and "occlusion" not in rec["curves"]
    assert forms == {
        "meta": (True, "checkpoint meta"),
        "forced": (True, "command line"),
        "standard": (False, "command line"),
    }
    # same weights, same form -> same numbers: the wsol-meta checkpoint forced standard equals the plain one
    a = json.loads((tmp_path / "standard" / "results.json").read_text())
    assert a["checkpoint"]["method"] == "cutmix"


def test_cub_test_split(demo_root, ckpts, tmp_path):

    out = tmp_path / "cub"
    assert (
        TOOL.main()(
            [
                "--backbone",
                str(ckpts["plain"]),
                "--dataset",
                "cub",
                "--data-root",
                str(demo_root / "CUB_200_2011"),
                "--out",
                str(out),
                "--tests",
                "occlusion",
                "--hole-sizes",
                "0",
                "224",
                "--image-size",
                "64",
                "--workers",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    rec = json.loads((out / "results.json").read_text())
    test = load_cub(demo_root / "CUB_200_2011", "test")
    assert (rec["dataset"], rec["split"], rec["num_images"]) == ("cub", "test", len(test))
    rows = read_csv(out / "per_image.csv")
    assert [r["image_id"] for r in rows] == [s.image_id for s in test]
    # centre hole of side 0 and boundary square of the whole image are the clean image
    clean_err = 100.0 - rec["metrics"]["clean_top1"]
    occ = rec["curves"]["occlusion"]
    assert occ["center_top1_err"][0] == pytest.approx(clean_err) == occ["boundary_top1_err"][1]


def test_determinism_and_seeded_pairs(demo_root, ckpts, tmp_path, single_run):
    main = TOOL.main()
    args = [
        *_imagenet_args(ckpts["plain"], demo_root / "ILSVRC"),
        "--tests",
        "inbetween",
        "--workers",
        "0",
        "--no-progress",
        *GRID,
    ]
    for seed in (0, 1):
        assert main(args + ["--out", str(tmp_path / f"seed{seed}"), "--seed", str(seed)]) == 0
    # seed 0 again (single_run ran with every test): the same pairs and predictions, so the same curves
    again = json.loads((tmp_path / "seed0" / "results.json").read_text())
    first = json.loads((single_run / "results.json").read_text())
    assert again["curves"] == {"inbetween": first["curves"]["inbetween"]}
    with (
        np.load(tmp_path / "seed0" / "predictions.npz") as a,
        np.load(single_run / "predictions.npz") as b,
        np.load(tmp_path / "seed1" / "predictions.npz") as c,
    ):
        for k in ("pairs", "mixup_pred", "cutmix_pred"):
            np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a["pairs"], c["pairs"])
    assert not (tmp_path / "seed0" / "per_image.csv").exists()


@pytest.mark.slow
def test_torchrun_two_processes_equal_single(demo_root, ckpts, single_run, tmp_path):
    out = tmp_path / "dist"
    args = eval_args("--backbone", ckpts["plain"], "imagenet", demo_root / "ILSVRC", out, "--device", "cpu", *GRID)
    TOOL.check_torchrun_equals_single(args, out, single_run)
    with np.load(out / "predictions.npz") as a, np.load(single_run / "predictions.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ------------------------------------------------------------------------------------------------ errors
def test_error_class_count_mismatch(ckpts, demo_root, tmp_path):
    line = one_line_error(
        TOOL.run(*_imagenet_args(ckpts["five"], demo_root / "ILSVRC"), "--out", str(tmp_path), "--image-size", "64")
    )
    assert "5-class" in line and "4 classes" in line and str(ckpts["five"]) in line
    assert not (tmp_path / "results.json").exists()


def test_error_missing_dataset(ckpts, tmp_path, capsys):
    assert (
        TOOL.main()(
            ["--backbone", str(ckpts["plain"]), "--dataset", "imagenet", "--data-root", str(tmp_path / "nowhere")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "nowhere") in err[0] and "--data-root" in err[0]


def test_unreadable_image_fails_naming_it_or_is_skipped(ckpts, demo_root, tmp_path):

    root = tmp_path / "ILSVRC"
    shutil.copytree(demo_root / "ILSVRC", root)
    bad = load_imagenet_val(root)[2]
    bad.path.write_bytes(b"this is not a jpeg")
    args = [
        *_imagenet_args(ckpts["plain"], root),
        "--image-size",
        "64",
        "--tests",
        "fgsm",
        "occlusion",
        "--hole-sizes",
        "0",
        "112",
    ]
    TOOL.check_unreadable_image(args, tmp_path, bad, kept=7)


def test_error_bad_options(ckpts, demo_root, capsys):
    base = _imagenet_args(ckpts["plain"], demo_root / "ILSVRC")
    cases = (
        (["--eps", "0"], "(0, 255]"),
        (["--eps", "300"], "(0, 255]"),
        (["--eps", "-2"], "(0, 255]"),
        (["--hole-sizes", "230"], "--hole-sizes"),
        (["--mixup-ratios", "1.5"], "--mixup-ratios"),
        (["--pairs", "0"], "--pairs"),
        (["--image-size", "8"], "--image-size"),
        (["--device", "nonsense"], "--device"),
        (["--max-images", "0"], "--max-images"),
    )
    TOOL.check_option_errors(base, cases, capsys)
