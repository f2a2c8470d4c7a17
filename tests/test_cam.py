"""cam.py: CAM against an explicit loop, normalisation order and edge cases, Grad-CAM on a GAP+fc head."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import torch

from cutmix_transfer import backbones as B
from cutmix_transfer import cam as CM
from cutmix_transfer.errors import ConfigError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model() -> B.CAMNet:
    torch.manual_seed(0)
    m = B.build_model("resnet18", 6, wsol=True).eval()
    with torch.no_grad():
        m.fc.weight.normal_()  # a head with clear per-class differences
    return m


def _loop_cam(feats: torch.Tensor, weight: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """wsolevaluation's definition, written as plain loops: mean over channels of w[c, k] * A_k."""
    B_, C_, h, w = feats.shape
    out = torch.zeros(B_, h, w, dtype=torch.float64)
    for b in range(B_):
        for k in range(C_):
            out[b] += weight[classes[b], k].double() * feats[b, k].double()
        out[b] /= C_
    return out


@pytest.mark.parametrize("use_gt", [True, False])
def test_cam_matches_explicit_loop(model, use_gt):
    x = torch.randn(3, 3, 48, 48)
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)
    classes = [4, 0, 5] if use_gt else logits.argmax(1).tolist()
    cams, got_logits = CM.class_activation_maps(model, x, torch.tensor([4, 0, 5]) if use_gt else None)
    assert cams.shape == (3, 3, 3) and cams.dtype == torch.float32
    assert torch.allclose(got_logits, logits, atol=1e-5)
    assert torch.allclose(cams.double(), _loop_cam(feats, model.fc.weight.detach(), classes), atol=1e-5)


def test_cam_accepts_a_list_of_classes_and_rejects_bad_ones(model):
    x = torch.randn(2, 3, 32, 32)
    a, _ = CM.class_activation_maps(model, x, [1, 2])
    b, _ = CM.class_activation_maps(model, x, torch.tensor([1, 2]))
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="out of range"):
        CM.class_activation_maps(model, x, [1, 6])
    with pytest.raises(ConfigError, match="3 classes given for a batch of 2"):
        CM.class_activation_maps(model, x, [1, 2, 3])
    with pytest.raises(ConfigError, match=r"\(B, 3, H, W\)"):
        CM.class_activation_maps(model, x[0], [1])


def test_cam_on_vgg16_gap():
    torch.manual_seed(1)
    m = B.build_model("vgg16", 3, wsol=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = m.features(x)
    cams, _ = CM.class_activation_maps(m, x, [2, 1])
    assert cams.shape == (2, 2, 2)
    assert torch.allclose(cams.double(), _loop_cam(feats, m.fc.weight.detach(), [2, 1]), atol=1e-5)


def test_normalize_resizes_first_then_min_max():
    """Bicubic overshoot: normalising after resizing gives exactly [0, 1]; the other order does not."""
    cam = np.zeros((2, 4, 4), np.float32)
    cam[0, 1, 2] = 5.0  # a single hot cell: bicubic rings below 0 around it
    cam[1] = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = CM.normalize_cams(torch.from_numpy(cam), size=(32, 32))
    assert out.shape == (2, 32, 32) and out.dtype == np.float32
    for i in range(2):
        r = cv2.resize(cam[i], (32, 32), interpolation=cv2.INTER_CUBIC)
        assert np.allclose(out[i], (r - r.min()) / (r.max() - r.min()), atol=1e-6)
        assert out[i].min() == 0.0 and out[i].max() == pytest.approx(1.0)
    other_order = cv2.resize(cam[0] / cam[0].max(), (32, 32), interpolation=cv2.INTER_CUBIC)
    assert other_order.min() < -1e-3  # the order matters: the reverse leaves values outside [0, 1]


def test_normalize_size_is_height_width():
    cam = np.zeros((1, 4, 4), np.float32)
    cam[0, 0, 3] = 1.0  # top-right
    out = CM.normalize_cams(cam, size=(20, 60))
    assert out.shape == (1, 20, 60)
    y, x = np.unravel_index(out[0].argmax(), out[0].shape)
    assert y < 10 and x > 40


def test_normalize_degenerate_maps_become_zeros():
    cams = np.stack([np.full((3, 3), 2.5, np.float32), np.ones((3, 3), np.float32), np.eye(3, dtype=np.float32)])
    cams[1, 1, 1] = np.nan
    out = CM.normalize_cams(cams, size=(9, 9))
    assert np.all(out[0] == 0) and np.all(out[1] == 0)
    assert out[2].max() == pytest.approx(1.0) and out[2].min() == 0.0
    with pytest.raises(ConfigError, match="B, h, w"):
        CM.normalize_cams(np.zeros((3, 3), np.float32))


def _minmax(a: np.ndarray) -> np.ndarray:
    return (a - a.min()) / (a.max() - a.min())


def test_grad_cams_equal_relu_cam_on_gap_fc_head(model):
    """Grad-CAM weights on GAP+fc are fc.weight[c] / (h*w): Grad-CAM = ReLU(CAM) up to a positive scale.

    The package then min-max normalises and resizes (bilinear) to the input size, and min-max normalises again.
    """
    pytest.importorskip("pytorch_grad_cam")
    x = torch.randn(2, 3, 64, 64)
    all_cams = torch.stack([CM.class_activation_maps(model, x, [c, c])[0] for c in range(6)], 1).numpy()
    # per image a class whose CAM has both signs, so that ReLU matters and min(ReLU(CAM)) = 0 (pure scale)
    classes = [int(np.argmax([(a.min() < 0) * (a.max() > 0) * np.ptp(a) for a in all_cams[i]])) for i in range(2)]
    got = CM.grad_cams(model, x, classes, method="gradcam")
    assert got.shape == (2, 64, 64) and got.dtype == np.float32
    for i, c in enumerate(classes):
        cam = all_cams[i, c]
        assert cam.min() < 0 < cam.max()
        relu = np.maximum(cam, 0)
        want = _minmax(cv2.resize(relu / relu.max(), (64, 64)))
        assert np.allclose(got[i], want, atol=1e-4)
        assert not np.allclose(got[i], _minmax(cv2.resize(_minmax(cam), (64, 64))), atol=1e-2)  # ReLU matters
    # HiResCAM (gradient * activation, summed) gives the same map on a GAP+fc head
    assert np.allclose(CM.grad_cams(model, x, classes, method="hirescam"), got, atol=1e-4)


def test_grad_cams_errors(model, monkeypatch):
    pytest.importorskip("pytorch_grad_cam")
    with pytest.raises(ConfigError, match="unknown Grad-CAM method 'gradcam3'"):
        CM.grad_cams(model, torch.randn(1, 3, 32, 32), [0], method="gradcam3")
    with pytest.raises(ConfigError, match="target_layer"):
        CM.grad_cams(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), torch.randn(1, 3, 8, 8), [0])


def test_grad_cams_without_the_package(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_grad_cam", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="pip install grad-cam"):
        CM.grad_cams(model, torch.randn(1, 3, 32, 32), [0])
