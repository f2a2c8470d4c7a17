"""Normalisation as trained in ood_eval, robustness_eval and wsol_eval (issue 26, item 4): --mean / --std, else the
checkpoint's meta, else the dataset's statistics (normalization.resolve_normalization, through
evalmodel.load_eval_classifier). Each tool's network inputs are checked against a normalisation written out here;
FGSM and the 'mean' occlusion fill against a computation that never goes through PixelClassifier; the record's
protocol block carries the statistics and the record names their source; a bad value is a one-line error. Also the
evaluators' shared flags (cli.add_evaluator_args): the same names and defaults in every evaluator."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import REPO, EvalTool, eval_args, load_tool, read_csv, resize_crop_resnet18_logits, varied_resnet18
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from cutmix_transfer.backbones import build_model
from cutmix_transfer.checkpoints import PROJECT_META_KEY
from cutmix_transfer.datasets.common import CIFAR100_CUTMIX_MEAN, IMAGENET_MEAN, IMAGENET_STD
from cutmix_transfer.datasets.cub import load_cub
from cutmix_transfer.datasets.imagenet import load_imagenet_val
from cutmix_transfer.robustness import fill_value, occlude
from cutmix_transfer.robustness.attacks import PixelClassifier, fgsm_perturb, fgsm_predictions, input_gradient_sign
from cutmix_transfer.wsol import evaluate as wsol_evaluate

CUSTOM_MEAN = (0.3, 0.6, 0.2)
CUSTOM_STD = (0.15, 0.4, 0.3)
META_MEAN = [0.55, 0.25, 0.45]
META_STD = [0.35, 0.2, 0.5]
NUM_CLASSES = 4  # conftest.DEMO_KWARGS
TOOLS = REPO / "tools"


def _flags(mean, std) -> list[str]:
    return ["--mean", *map(str, mean), "--std", *map(str, std)]


def _with_meta(net: nn.Module, arch: str, k: int, path: Path, **meta) -> Path:
    """`net` in this project's checkpoint layout: backbone.* weights and meta['cutmix_transfer']."""
    torch.save(
        {
            "state_dict": {f"backbone.{n}": v for n, v in net.state_dict().items()},
            "meta": {PROJECT_META_KEY: {"arch": arch, "num_classes": k, **meta}},
        },
        path,
    )
    return path


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)) / torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)


# ---------------------------------------------------------------------------------------------------- FGSM, fill
class _TinyNet(nn.Module):
    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.c1, self.fc = nn.Conv2d(3, 6, 3, padding=1), nn.Linear(6, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.c1(x)).mean(dim=(2, 3)))


def _hand_fgsm(net: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, space: str, mean, std) -> torch.Tensor:
    """FGSM written on the normalised input z = (x - mean) / std: sign(dCE/dz) equals sign(dCE/dx) (std > 0). Pixels:
    x + eps/255 * sign, clipped to [0, 1]; normalized: a step of eps/255 on z, i.e. x + std * eps/255 * sign."""
    z = _normalise(x, mean, std).detach().requires_grad_(True)
    loss = F.cross_entropy(net(z), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, z)
    if space == "pixels":
        return (x + eps / 255.0 * g.sign()).clamp(0.0, 1.0)
    return x + torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1) * (eps / 255.0) * g.sign()


@pytest.mark.parametrize("space", ["pixels", "normalized"])
def test_fgsm_with_custom_statistics_equals_a_hand_computation(space):
    torch.manual_seed(0)
    net = _TinyNet().double().eval()
    x = torch.rand(6, 3, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    model = PixelClassifier(net, CUSTOM_MEAN, CUSTOM_STD).double().eval()
    sign, _ = input_gradient_sign(model, x, y)
    for eps in (8.0, 64.0):
        want = _hand_fgsm(net, x, y, eps, space, CUSTOM_MEAN, CUSTOM_STD)
        got = fgsm_perturb(x, sign, eps, space, model.std)
        # the model holds its statistics in float32 (PixelClassifier's buffers): a 'normalized' step of
        # std * eps/255 differs from the float64 one here by std's float32 rounding (< 1e-8 relative)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12 if space == "pixels" else 1e-8)
    logits, preds = fgsm_predictions(model, x, y, [8.0, 64.0], space)
    torch.testing.assert_close(logits, net(_normalise(x, CUSTOM_MEAN, CUSTOM_STD)).detach())
    for j, eps in enumerate((8.0, 64.0)):
        adv = _hand_fgsm(net, x, y, eps, space, CUSTOM_MEAN, CUSTOM_STD)
        assert preds[:, j].tolist() == net(_normalise(adv, CUSTOM_MEAN, CUSTOM_STD)).argmax(1).tolist()
    # the statistics matter: ImageNet's give another network input, hence other logits
    other = PixelClassifier(net, IMAGENET_MEAN, IMAGENET_STD).double()
    assert not torch.allclose(other(x), model(x))


def test_mean_fill_is_the_model_statistics_mean_colour():
    model = PixelClassifier(nn.Identity(), CUSTOM_MEAN, CUSTOM_STD)
    x = torch.rand(2, 3, 16, 16)
    out = occlude(x, 8, "center", fill_value("mean", model.mean))
    z = model(out)  # the normalised network input: zero where the square was filled
    assert torch.equal(z[..., 4:12, 4:12], torch.zeros_like(z[..., 4:12, 4:12]))
    assert torch.allclose(out[0, :, 8, 8], torch.tensor(CUSTOM_MEAN))
    with pytest.raises(TypeError):  # no default statistics left to fall back to
        PixelClassifier(nn.Identity())  # type: ignore[call-arg]


# ---------------------------------------------------------------------------------------------------- robustness
@pytest.fixture(scope="module")
def rob_ckpts(tmp_path_factory) -> dict:
    """A 4-class ResNet-18 with non-trivial BN statistics as a plain state dict and in this project's layout with
    META_MEAN / META_STD in its meta."""
    d = tmp_path_factory.mktemp("rob_norm")
    net = varied_resnet18(NUM_CLASSES)
    torch.save(net.state_dict(), d / "r18.pth")
    meta = _with_meta(net, "resnet18", NUM_CLASSES, d / "r18_meta.pth", mean=META_MEAN, std=META_STD)
    return {"plain": d / "r18.pth", "meta": meta}


def _rob_hand(ckpt: Path, paths: list[Path], size: int, mean, std) -> tuple[list[int], np.ndarray]:
    """(clean predictions, clean confidences) of the ImageNet val pipeline written out, with `mean` / `std`."""
    z = resize_crop_resnet18_logits(ckpt, paths, size, mean, std, NUM_CLASSES)
    return z.argmax(1).tolist(), torch.softmax(z.double(), 1).max(1).values.numpy()


def _rob_run(demo_root: Path, ckpt: Path, out: Path, *extra: str) -> tuple[dict, list[dict]]:
    main = EvalTool(TOOLS / "robustness_eval.py").main()
    args = eval_args("--backbone", ckpt, "imagenet", demo_root / "ILSVRC", out, "--image-size", "64", *extra)
    assert main([*args, "--tests", "fgsm", "--device", "cpu"]) == 0
    return json.loads((out / "results.json").read_text()), read_csv(out / "per_image.csv")


def test_robustness_inputs_follow_flags_then_meta_then_imagenet(demo_root, rob_ckpts, tmp_path):
    paths = [s.path for s in load_imagenet_val(demo_root / "ILSVRC")]
    cases = [
        ("flags", rob_ckpts["plain"], _flags(CUSTOM_MEAN, CUSTOM_STD), CUSTOM_MEAN, CUSTOM_STD, "command line"),
        ("meta", rob_ckpts["meta"], [], META_MEAN, META_STD, "checkpoint meta"),
        ("default", rob_ckpts["plain"], [], IMAGENET_MEAN, IMAGENET_STD, "dataset default"),
        (
            "flags_over_meta",
            rob_ckpts["meta"],
            _flags(CUSTOM_MEAN, CUSTOM_STD),
            CUSTOM_MEAN,
            CUSTOM_STD,
            "command line",
        ),
    ]
    confidences = {}
    for name, ckpt, extra, mean, std, source in cases:
        rec, rows = _rob_run(demo_root, ckpt, tmp_path / name, *extra)
        assert rec["protocol"]["normalize_mean"] == pytest.approx(list(mean))
        assert rec["protocol"]["normalize_std"] == pytest.approx(list(std))
        assert rec["normalization_source"] == source
        preds, conf = _rob_hand(rob_ckpts["plain"], paths, 64, mean, std)  # the same weights, a plain file
        assert [int(r["clean_pred"]) for r in rows] == preds
        np.testing.assert_allclose([float(r["clean_confidence"]) for r in rows], conf, rtol=1e-4)
        confidences[name] = conf
    # other statistics, other scores: the flags are not ignored
    assert not np.allclose(confidences["flags"], confidences["default"], rtol=1e-3)
    assert not np.allclose(confidences["meta"], confidences["default"], rtol=1e-3)


def test_robustness_bad_statistics_are_one_line_errors(demo_root, rob_ckpts, tmp_path, capsys):
    base = eval_args("--backbone", rob_ckpts["plain"], "imagenet", demo_root / "ILSVRC", tmp_path / "e")
    EvalTool(TOOLS / "robustness_eval.py").check_option_errors(
        base,
        [
            (["--std", "0.2", "0", "0.2", "--mean", "0", "0", "0"], "--std"),
            (["--mean", "0.5", "0.5", "0.5"], "--mean and --std"),
            (["--mean", "nan", "0", "0", "--std", "1", "1", "1"], "--mean"),
        ],
        capsys,
    )


# ---------------------------------------------------------------------------------------------------- OOD
CIFAR10_NAMES = [f"c{i}" for i in range(10)]


@pytest.fixture(scope="module")
def ood_data(tmp_path_factory) -> dict:
    """10 CIFAR-10 test images (python layout), a CIFAR ResNet-8 as a plain state dict and with META_MEAN / META_STD
    in its meta."""
    d = tmp_path_factory.mktemp("ood_norm")
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, 10)]
    folder = d / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": rows, b"labels": labels}, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in CIFAR10_NAMES]}))
    torch.manual_seed(4)
    model = build_model("cifar_resnet8_basic_zeropad", 10).eval()
    with torch.no_grad():
        model.fc.weight.mul_(6.0)  # spread the softmax: the statistics then move the scores visibly
    torch.save(model.state_dict(), d / "r8.pth")
    meta = _with_meta(model, model.arch, 10, d / "r8_meta.pth", mean=META_MEAN, std=META_STD)
    return {"cifar": d / "cifar", "images": images, "model": model, "plain": d / "r8.pth", "meta": meta}


def _ood_args(data: dict, ckpt: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--backbone",
        str(ckpt),
        "--in-dataset",
        "cifar10",
        "--data-root",
        str(data["cifar"]),
        "--ood",
        "uniform",
        "--noise-count",
        "6",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
        *extra,
    ]


def _msp(model: nn.Module, pixels: torch.Tensor, mean, std) -> np.ndarray:
    with torch.no_grad():
        z = model(_normalise(pixels, mean, std)).double()
    return torch.softmax(z, 1).max(1).values.numpy()


def test_ood_scores_follow_flags_then_meta_then_cifar_default(ood_data, tmp_path):
    from cutmix_transfer.ood.data import noise_image

    main = EvalTool(TOOLS / "ood_eval.py").main()
    pixels = torch.from_numpy(ood_data["images"].astype(np.float32) / 255).permute(0, 3, 1, 2)
    noise = torch.from_numpy(np.stack([noise_image("uniform", 0, i) for i in range(6)]).astype(np.float32))
    cases = [
        ("flags", ood_data["plain"], _flags(CUSTOM_MEAN, CUSTOM_STD), CUSTOM_MEAN, CUSTOM_STD, "command line"),
        ("meta", ood_data["meta"], [], META_MEAN, META_STD, "checkpoint meta"),
        ("default", ood_data["plain"], [], None, None, "dataset default"),
    ]
    scores = {}
    for name, ckpt, extra, mean, std, source in cases:
        out = tmp_path / name
        assert main(_ood_args(ood_data, ckpt, out, *extra)) == 0
        rec = json.loads((out / "results.json").read_text())
        if mean is None:  # CutMix-PyTorch's CIFAR statistics
            mean, std = rec["protocol"]["normalize_mean"], rec["protocol"]["normalize_std"]
            assert mean == pytest.approx(list(CIFAR100_CUTMIX_MEAN))
        assert rec["protocol"]["normalize_mean"] == pytest.approx(list(mean))
        assert rec["protocol"]["normalize_std"] == pytest.approx(list(std))
        assert rec["normalization_source"] == source
        got = np.load(out / "scores.npz")
        np.testing.assert_allclose(got["in_distribution"], _msp(ood_data["model"], pixels, mean, std), rtol=1e-5)
        np.testing.assert_allclose(got["uniform"], _msp(ood_data["model"], noise, mean, std), rtol=1e-5)
        scores[name] = got["in_distribution"]
    assert not np.allclose(scores["flags"], scores["default"], rtol=1e-3)
    assert not np.allclose(scores["meta"], scores["default"], rtol=1e-3)


def test_ood_bad_statistics_are_one_line_errors(ood_data, tmp_path, capsys):
    EvalTool(TOOLS / "ood_eval.py").check_option_errors(
        _ood_args(ood_data, ood_data["plain"], tmp_path / "e"),
        [(["--mean", "0", "0", "0", "--std", "1", "-1", "1"], "--std"), (["--std", "1", "1", "1"], "--mean and --std")],
        capsys,
    )


# ---------------------------------------------------------------------------------------------------- WSOL
def _wsol_inputs(path: Path, mean, std) -> torch.Tensor:
    """wsolevaluation's input written out: PIL RGB, bilinear 224 x 224, [0, 1], (x - mean) / std."""
    with Image.open(path) as im:
        x = TF.to_tensor(TF.resize(im.convert("RGB"), [224, 224], interpolation=InterpolationMode.BILINEAR))
    return _normalise(x[None], mean, std)[0]


def test_wsol_network_inputs_follow_flags_then_meta_then_imagenet(demo_root, rob_ckpts, tmp_path, monkeypatch):
    """The images the CAM step gets (captured), against the pipeline written out with each source's statistics."""
    cub = demo_root / "CUB_200_2011"
    samples = load_cub(cub, "test", with_masks=False, check_images=False)
    real = wsol_evaluate.compute_scoremaps
    seen: list[torch.Tensor] = []

    def capture(model, images, labels, method="cam"):
        seen.append(images.detach().cpu().clone())
        return real(model, images, labels, method)

    monkeypatch.setattr(wsol_evaluate, "compute_scoremaps", capture)
    main = EvalTool(TOOLS / "wsol_eval.py").main()
    cases = [
        ("flags", rob_ckpts["plain"], _flags(CUSTOM_MEAN, CUSTOM_STD), CUSTOM_MEAN, CUSTOM_STD, "command line"),
        ("meta", rob_ckpts["meta"], [], META_MEAN, META_STD, "checkpoint meta"),
        ("default", rob_ckpts["plain"], [], IMAGENET_MEAN, IMAGENET_STD, "dataset default"),
    ]
    for name, ckpt, extra, mean, std, source in cases:
        seen.clear()
        out = tmp_path / name
        assert (
            main(eval_args("--backbone", ckpt, "cub", cub, out, "--device", "cpu", "--batch-size", "64", *extra)) == 0
        )
        rec = json.loads((out / "results.json").read_text())
        assert rec["protocol"]["normalize_mean"] == pytest.approx(list(mean))
        assert rec["protocol"]["normalize_std"] == pytest.approx(list(std))
        assert rec["normalization_source"] == source
        got = torch.cat(seen)
        want = torch.stack([_wsol_inputs(s.path, mean, std) for s in samples])
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_wsol_statistics_errors_are_one_line(demo_root, rob_ckpts, tmp_path, capsys):
    cub = demo_root / "CUB_200_2011"
    tool = EvalTool(TOOLS / "wsol_eval.py")
    tool.check_option_errors(
        eval_args("--backbone", rob_ckpts["plain"], "cub", cub, tmp_path / "e"),
        [(["--mean", "0", "0", "0", "--std", "0", "1", "1"], "--std"), (["--mean", "0", "0", "0"], "--mean and")],
        capsys,
    )
    maps = tmp_path / "maps.npz"
    maps.write_bytes(b"")  # never read: the option check comes first
    tool.check_option_errors(
        eval_args("--scoremaps", maps, "cub", cub, tmp_path / "e2"),
        [(_flags(CUSTOM_MEAN, CUSTOM_STD), "--scoremaps")],
        capsys,
    )


# ---------------------------------------------------------------------------------------------------- shared flags
EVALUATORS = {  # tool -> (its required arguments, batch size and workers defaults)
    "test_cls": (["--backbone", "b.pth", "--dataset", "cifar10"], 64, 4),
    "corruption_eval": (["--backbone", "b.pth", "--corruption-root", "c"], 64, 4),
    "ood_eval": (["--backbone", "b.pth", "--ood", "uniform"], 128, 0),
    "robustness_eval": (["--backbone", "b.pth", "--dataset", "cub"], 64, 4),
    "wsol_eval": (["--backbone", "b.pth", "--dataset", "cub"], 32, None),
}


@pytest.mark.parametrize("tool", sorted(EVALUATORS))
def test_every_evaluator_declares_the_shared_flags_alike(tool):
    from cutmix_transfer.wsol.evaluate import default_workers

    required, batch_size, workers = EVALUATORS[tool]
    p = load_tool(TOOLS / f"{tool}.py", f"norm_flags_{tool}").build_parser()
    args = p.parse_args(required)
    assert (args.batch_size, args.workers) == (batch_size, default_workers() if workers is None else workers)
    assert (args.mean, args.std, args.device, args.seed, args.progress, args.skip_unreadable) == (
        None,
        None,
        "auto",
        0,
        True,
        False,
    )
    assert (args.trust_checkpoint, args.arch, args.local_rank) == (False, None, 0)
    args = p.parse_args([*required, *_flags(CUSTOM_MEAN, CUSTOM_STD), "--no-progress", "--local-rank", "1"])
    assert (args.mean, args.std, args.progress) == (list(CUSTOM_MEAN), list(CUSTOM_STD), False)
    with pytest.raises(SystemExit):
        p.parse_args([*required, "--mean", "0", "0"])
    text = p.format_help()
    for flag in ("--mean M M M", "--std S S S", "--batch-size", "--workers", "--no-progress", "--skip-unreadable"):
        assert flag in text, (tool, flag)
    assert "checkpoint meta's, else the dataset's" in " ".join(text.split())
