"""tools/ood_eval.py paths test_ood.py leaves out, end to end in process: --in-dataset cifar10 (the CIFAR-10 python
layout written by hand), --skip-unreadable with the unreadable OOD image in the middle of the file order (each kept
row keeps its own image id and score), ODIN's --temperature and --epsilon from the command line against a
per-image ODIN written here, their range checks, and ODIN's ">= 0 -> +1" gradient-sign rule on a model whose input
gradient is exactly zero."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import REPO, EvalTool, read_csv
from PIL import Image

from cutmix_transfer.backbones import build_model
from cutmix_transfer.ood import detectors

TOOL = EvalTool(REPO / "tools" / "ood_eval.py")
# CutMix-PyTorch's CIFAR normalisation (the OOD evaluator's, for CIFAR-10 too): (125.3, 123.0, 113.9) / 255 ...
MEAN = np.array([125.3, 123.0, 113.9]) / 255
STD = np.array([63.0, 62.1, 66.7]) / 255
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _write_cifar10(root: Path, images: np.ndarray, labels: list[int]) -> Path:
    """CIFAR-10's python release by hand: cifar-10-batches-py/test_batch ({b'data': (N, 3072) R, G, B planes,
    b'labels'}) and batches.meta ({b'label_names'})."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": rows, b"filenames": []}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_cases_per_batch": len(labels)}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def _normalise(hwc_uint8: np.ndarray) -> torch.Tensor:
    x = hwc_uint8.astype(np.float64) / 255
    return torch.from_numpy(((x - MEAN) / STD).transpose(0, 3, 1, 2).astype(np.float32).copy())


def _softmax_max(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).max(axis=1)


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory) -> dict:
    """12 CIFAR-10 test images, a 10-class CIFAR ResNet-8 (a plain state dict), an OOD folder of 5 PNGs whose third
    file (test/002.png) is not an image."""
    d = tmp_path_factory.mktemp("ood_c10")
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, 12)]
    _write_cifar10(d / "cifar", images, labels)
    ood = d / "ood" / "Textures" / "test"
    ood.mkdir(parents=True)
    ood_images = {}
    for i in range(5):
        if i == 2:
            (ood / f"{i:03d}.png").write_bytes(b"\x89PNG\r\n\x1a\n but not an image")
            continue
        a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        a[..., i % 3] //= 3
        Image.fromarray(a).save(ood / f"{i:03d}.png")
        ood_images[i] = a
    torch.manual_seed(4)
    model = build_model("cifar_resnet8_basic_zeropad", 10)  # He et al.'s 8-layer CIFAR ResNet: fast per image
    torch.save(model.state_dict(), d / "r8_c10.pth")
    return {
        "cifar": d / "cifar",
        "images": images,
        "labels": labels,
        "ood": d / "ood" / "Textures",
        "ood_images": ood_images,
        "ckpt": d / "r8_c10.pth",
        "model": model.eval(),
    }


def _args(data: dict, out: Path, *extra: str) -> list[str]:
    return [
        "--backbone",
        str(data["ckpt"]),
        "--in-dataset",
        "cifar10",
        "--data-root",
        str(data["cifar"]),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
        *extra,
    ]


def test_cifar10_in_distribution_end_to_end_with_an_unreadable_image_in_the_middle(cifar10, tmp_path):
    model = cifar10["model"]
    with torch.no_grad():
        z_in = model(_normalise(cifar10["images"])).double().numpy()
        kept = sorted(cifar10["ood_images"])  # 0, 1, 3, 4
        z_out = model(_normalise(np.stack([cifar10["ood_images"][i] for i in kept]))).double().numpy()
    main = TOOL.main()
    recs = {}
    for bs in ("5", "2"):  # the bad file in the middle of one batch, then first of its batch
        out = tmp_path / f"bs{bs}"
        assert main(_args(cifar10, out, "--ood", str(cifar10["ood"]), "--skip-unreadable", "--batch-size", bs)) == 0
        rec = recs[bs] = json.loads((out / "results.json").read_text())
        assert rec["dataset"] == "cifar10" and rec["num_in_images"] == 12
        scores = np.load(out / "scores.npz")
        assert np.allclose(scores["in_distribution"], _softmax_max(z_in), rtol=1e-6)
        rows = read_csv(out / "per_image" / "in_distribution.csv")
        assert [int(r["label"]) for r in rows] == cifar10["labels"]
        assert [r["class_name"] for r in rows] == [CIFAR10_NAMES[y] for y in cifar10["labels"]]
        assert [int(r["predicted"]) for r in rows] == list(z_in.argmax(axis=1))
        assert rec["metrics"]["top1_err"] == pytest.approx(100 * np.mean(z_in.argmax(axis=1) != cifar10["labels"]))
        # the OOD rows: the kept images in file order, each with its own index, id, prediction and score
        rows = read_csv(out / "per_image" / "Textures.csv")
        assert [int(r["index"]) for r in rows] == kept
        assert [r["image_id"] for r in rows] == [f"test/{i:03d}.png" for i in kept]
        assert np.allclose([float(r["score"]) for r in rows], _softmax_max(z_out), rtol=1e-6)
        assert [r["predicted_name"] for r in rows] == [CIFAR10_NAMES[k] for k in z_out.argmax(axis=1)]
        assert np.array_equal(scores["Textures"], [float(r["score"]) for r in rows])
        skipped = rec["skipped_unreadable"]
        assert skipped["count"] == 1 and rec["per_set"]["Textures"]["num_skipped"] == 1
        assert {k: skipped["images"][0][k] for k in ("set", "index", "image_id")} == {
            "set": "Textures",
            "index": 2,
            "image_id": "test/002.png",
        }
        assert rec["per_set"]["Textures"]["num_images"] == 4
    assert recs["5"]["metrics"] == recs["2"]["metrics"]


def _odin_by_hand(model: nn.Module, x: torch.Tensor, temperature: float, epsilon: float) -> np.ndarray:
    """ODIN per image: the gradient of CE(f(x) / T, argmax) w.r.t. x, the step -eps * s / std per channel with
    s = +1 where the gradient is >= 0 and -1 elsewhere, then max softmax(f(x') / T) (in float64)."""
    out = []
    for i in range(len(x)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        z = model(xi)
        loss = nn.functional.cross_entropy(z / temperature, z.detach().argmax(dim=1))
        (g,) = torch.autograd.grad(loss, xi)
        s = np.where(g.numpy() >= 0, 1.0, -1.0)
        moved = xi.detach().numpy().astype(np.float64) - epsilon * s / STD.reshape(1, 3, 1, 1)
        with torch.no_grad():
            zz = model(torch.from_numpy(moved.astype(np.float32))).double().numpy() / temperature
        out.append(_softmax_max(zz)[0])
    return np.array(out)


def test_odin_temperature_and_epsilon_from_the_command_line(cifar10, tmp_path, capsys):
    x = _normalise(cifar10["images"][:6])
    main = TOOL.main()
    got = {}
    for t, eps in (("10", "0.02"), ("10", "0"), ("2.5", "0.02")):
        out = tmp_path / f"odin_{t}_{eps}"
        # one image a batch, as the reference: batched float32 convolutions round differently, which can flip
        # the sign of a near-zero gradient
        args = _args(cifar10, out, "--ood", "uniform", "--noise-count", "2", "--detector", "odin", "--batch-size", "1")
        assert main([*args, "--temperature", t, "--epsilon", eps]) == 0, capsys.readouterr().err
        rec = json.loads((out / "results.json").read_text())
        assert rec["detector"] == "odin"
        assert rec["detector_params"]["temperature"] == float(t) and rec["detector_params"]["epsilon"] == float(eps)
        got[(t, eps)] = np.load(out / "scores.npz")["in_distribution"][:6]
        want = _odin_by_hand(cifar10["model"], x, float(t), float(eps))
        assert np.allclose(got[(t, eps)], want, rtol=0, atol=1e-7), (t, eps)  # float32 rounding of the step
    assert np.abs(got[("10", "0.02")] - got[("10", "0")]).min() > 0  # epsilon reaches the detector
    assert np.abs(got[("10", "0.02")] - got[("2.5", "0.02")]).min() > 0  # so does the temperature


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--detector", "odin", "--temperature", "0"], "temperature must be > 0, got 0.0"),
        (["--detector", "odin", "--temperature", "-1"], "temperature must be > 0"),
        (["--detector", "odin", "--epsilon", "-0.001"], "epsilon must be >= 0, got -0.001"),
        (["--detector", "energy", "--temperature", "0"], "temperature must be > 0"),
        (["--detector", "energy", "--epsilon", "0.1"], "--epsilon does not apply to --detector energy"),
    ],
)
def test_odin_option_ranges_are_one_line_errors(cifar10, tmp_path, capsys, extra, needle):
    out = tmp_path / "o"
    assert TOOL.main()(_args(cifar10, out, "--ood", "uniform", "--noise-count", "2", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not (out / "results.json").exists()


class _FlatReLU(nn.Module):
    """logits (relu(-10 * x[:, 0, 0, 0]), 0): the input gradient is exactly 0 when x[0, 0, 0] >= 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(-10 * x[:, 0, 0, 0])
        return torch.stack([h, torch.zeros_like(h)], dim=1)


def test_odin_moves_zero_gradient_pixels_by_minus_epsilon():
    # ODIN's code takes the sign as (grad >= 0) * 2 - 1: a zero gradient counts as +1, so the pixel moves by
    # -eps / std. Here that step crosses the ReLU's kink; torch.sign (0 stays) or "> 0" (-1: +eps) would not.
    x = torch.zeros(3, 3, 2, 2)
    x[:, 0, 0, 0] = torch.tensor([0.0, 0.01, 0.2])
    eps, t = 0.02, 1.0
    scores, logits = detectors.build_detector("odin", temperature=t, epsilon=eps)(_FlatReLU(), x)
    assert torch.equal(logits, torch.zeros(3, 2))
    moved = x[:, 0, 0, 0].double() - eps / STD[0]  # every gradient is 0: every pixel moves down
    h = np.maximum(-10 * moved.numpy(), 0)
    want = 1 / (1 + np.exp(-h / t))  # max softmax of (h, 0)
    assert np.allclose(scores.numpy(), want, rtol=1e-6)
    assert scores[0] > 0.5 and scores[1] > 0.5 and scores[2] == 0.5  # the third is too far from the kink
