"""Corruption robustness: the metric arithmetic against hand-built tables and the reference formulas (AugMix's
compute_mce and cifar.py test_c, robustness_metrics' relative mCE, test.py's unnormalised mean) written out here;
both released layouts with their quirks (a missing corruption, a missing severity, a wrong image count, a truncated
.npy, a wrong label count); the tool's numbers against a hand-written pipeline; torchrun against one process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision
from helpers import REPO, EvalTool, load_tool_main, one_line_error, read_csv, write_cifar100
from PIL import Image
from torchvision.transforms import functional as TF

from cutmix_transfer.backbones import build_model
from cutmix_transfer.corruptions.metrics import (
    ALEXNET_CLEAN_ERR,
    ALEXNET_ERR,
    corruption_error,
    error_table,
    summarize_errors,
)
from cutmix_transfer.corruptions.write import write_cifar_c
from cutmix_transfer.datasets.common import CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD, IMAGENET_MEAN, IMAGENET_STD
from cutmix_transfer.datasets.corruptions import CORRUPTIONS, EXTRA_CORRUPTIONS, load_cifar_c, load_imagenet_c
from cutmix_transfer.errors import DatasetError

TOOL = EvalTool(REPO / "tools" / "corruption_eval.py")
MAKE = REPO / "tools" / "make_corruptions.py"
NUM_CLASSES = 4


# ------------------------------------------------------------------------------------------------ metrics
def augmix_compute_mce(corruption_accs: dict[str, list[float]]) -> float:
    """google-research/augmix imagenet.py compute_mce, written out: accuracies (fractions) per severity."""
    alexnet = [ALEXNET_ERR[c] for c in CORRUPTIONS]
    mce = 0.0
    for i in range(len(CORRUPTIONS)):
        avg_err = 1 - np.mean(corruption_accs[CORRUPTIONS[i]])
        ce = 100 * avg_err / alexnet[i]
        mce += ce / 15
    return mce


def robustness_metrics_relative_mce(accs: dict[str, list[float]], clean_acc: float) -> float:
    """robustness_metrics reports/imagenet_variants.py ImagenetVariantsReport.result's relative mCE, written out."""
    clean_err = 1 - clean_acc
    relative = []
    for c in CORRUPTIONS:
        average_err = 1 - np.mean(accs[c])
        relative.append((average_err - clean_err) / (ALEXNET_ERR[c] - ALEXNET_CLEAN_ERR))
    return float(np.mean(relative))


def test_alexnet_constants_agree_with_both_sources():
    # robustness_metrics' ALEXENET_AVERAGE_ERRORS: the same errors to 3 digits
    rm = [0.886, 0.894, 0.923, 0.820, 0.826, 0.786, 0.798, 0.867, 0.827, 0.819, 0.565, 0.853, 0.646, 0.718, 0.607]
    assert list(ALEXNET_ERR) == list(CORRUPTIONS)
    np.testing.assert_allclose([ALEXNET_ERR[c] for c in CORRUPTIONS], rm, atol=5.1e-4)
    assert ALEXNET_CLEAN_ERR == 0.4348


def test_hand_built_table():
    # every error k times AlexNet's: CE_c = 100 k for each corruption, so mCE = 100 k; relative mCE by hand
    k, clean = 0.7, 20.0
    table = {c: {s: 100 * k * ALEXNET_ERR[c] for s in range(1, 6)} for c in CORRUPTIONS}
    table["speckle_noise"] = {s: 10.0 * s for s in range(1, 6)}  # an extra: unnormalised only
    out = summarize_errors(table, clean_err=clean)
    assert out["mce"]["value"] == pytest.approx(70.0) and not out["mce"]["partial"]
    rel = np.mean(
        [(100 * k * ALEXNET_ERR[c] - clean) / (100 * (ALEXNET_ERR[c] - ALEXNET_CLEAN_ERR)) for c in CORRUPTIONS]
    )
    assert out["relative_mce"]["value"] == pytest.approx(100 * rel)
    assert out["per_corruption"]["speckle_noise"]["ce"] is None
    assert out["per_corruption"]["speckle_noise"]["mean_err"] == pytest.approx(30.0)
    # test.py's unnormalised mean: over all 16 corruptions of the mean over severities
    means = [100 * k * ALEXNET_ERR[c] for c in CORRUPTIONS] + [30.0]
    assert out["mean_err"] == pytest.approx(np.mean(means))
    assert out["mean_err_standard"] == pytest.approx(np.mean(means[:15]))


def test_mce_and_relative_mce_equal_the_reference_formulas():
    rng = np.random.default_rng(5)
    accs = {c: list(rng.uniform(0.1, 0.8, 5)) for c in CORRUPTIONS}
    clean_acc = 0.77
    table = {c: {s + 1: 100 * (1 - a) for s, a in enumerate(v)} for c, v in accs.items()}
    out = summarize_errors(table, clean_err=100 * (1 - clean_acc))
    assert out["mce"]["value"] == pytest.approx(augmix_compute_mce(accs), rel=1e-12)
    assert out["relative_mce"]["value"] == pytest.approx(100 * robustness_metrics_relative_mce(accs, clean_acc))
    # CE_c = sum over severities / AlexNet's sum (5 x its mean)
    c = "fog"
    assert corruption_error(table[c], c) == pytest.approx(100 * sum(table[c].values()) / (5 * 100 * ALEXNET_ERR[c]))


def test_partial_mce_is_labelled_and_needs_all_severities():
    rng = np.random.default_rng(6)
    have = [c for c in CORRUPTIONS if c not in ("motion_blur", "snow", "frost")]
    table = {c: {s: float(rng.uniform(10, 90)) for s in range(1, 6)} for c in have}
    table["zoom_blur"] = {1: 30.0, 2: 40.0}  # two severities only: no CE
    out = summarize_errors(table)
    covers = [c for c in have if c != "zoom_blur"]
    assert out["mce"]["partial"] and out["mce"]["covers"] == covers
    assert out["mce"]["missing"] == ["motion_blur", "zoom_blur", "snow", "frost"]
    assert "partial mCE over 11 of the 15" in out["mce"]["label"] and "zoom_blur" in out["mce"]["label"]
    expected = np.mean([np.sum(list(table[c].values())) / (5 * ALEXNET_ERR[c]) for c in covers])
    assert out["mce"]["value"] == pytest.approx(expected)
    assert out["relative_mce"] is None  # no clean error
    assert out["per_corruption"]["zoom_blur"]["mean_err"] == 35.0


def test_cifar_mean_error_equals_augmix_test_c():
    # AugMix cifar.py test_c: per corruption the accuracy over all 5 N images, then the mean over corruptions
    rng = np.random.default_rng(7)
    n = 40
    names = list(CORRUPTIONS[:6]) + list(EXTRA_CORRUPTIONS[:1])
    sets = [(c, s) for c in names for s in range(1, 6)]
    wrong = rng.random((len(sets), n)) < rng.uniform(0.1, 0.9, (len(sets), 1))
    evaluated = np.ones_like(wrong)
    table, pooled, counts = error_table(sets, wrong, evaluated)
    out = summarize_errors(table, pooled=pooled, alexnet=False)
    accs = [1 - np.mean(np.concatenate([wrong[k] for k, (c2, _) in enumerate(sets) if c2 == c])) for c in names[:6]]
    assert out["augmix_mean_err"]["value"] == pytest.approx(100 - 100 * np.mean(accs))
    assert out["augmix_mean_err"]["partial"] and out["mce"] is None
    assert counts["fog/1" if "fog" in names else f"{names[0]}/1"] == n
    # with an image left out of one set, that set's error is over the others
    evaluated[0, :5] = False
    table2, _, counts2 = error_table(sets, wrong, evaluated)
    assert counts2[f"{sets[0][0]}/1"] == n - 5
    assert table2[sets[0][0]][1] == pytest.approx(100 * wrong[0, 5:].mean())


# ------------------------------------------------------------------------------------------------ readers
def _imagenet_c(root: Path, corruptions=("gaussian_noise", "fog"), wnids=("n00000002", "n00000001"), per=3) -> Path:
    rng = np.random.default_rng(0)
    for c in corruptions:
        for s in range(1, 6):
            for w in wnids:
                d = root / c / str(s) / w
                d.mkdir(parents=True)
                for i in range(per):
                    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(d / f"{w}_{i}.JPEG")
    return root


def test_imagenet_c_reader_and_its_quirks(tmp_path):
    root = _imagenet_c(tmp_path / "c")
    data = load_imagenet_c(root)
    assert data.missing == [c for c in CORRUPTIONS + EXTRA_CORRUPTIONS if c not in ("gaussian_noise", "fog")]
    assert [s.name for s in data.sets] == [f"{c}/{s}" for c in ("gaussian_noise", "fog") for s in range(1, 6)]
    assert data.keys[0] == "n00000001/n00000001_0.JPEG" and list(data.labels) == [0, 0, 0, 1, 1, 1]
    # a missing severity folder
    shutil.rmtree(root / "fog" / "3")
    with pytest.raises(DatasetError, match=r"fog/3: missing severity folder.*--skip-unreadable"):
        load_imagenet_c(root)
    data = load_imagenet_c(root, skip=True)
    assert [s["set"] for s in data.skipped] == ["fog/3"] and len(data.sets) == 9
    # a wrong image count
    (root / "gaussian_noise" / "2" / "n00000001" / "n00000001_1.JPEG").unlink()
    with pytest.raises(DatasetError, match="wrong image count: 5 images, expected 6"):
        load_imagenet_c(root, corruptions=["gaussian_noise"])
    data = load_imagenet_c(root, corruptions=["gaussian_noise"], severities=[1, 2, 4], skip=True)
    assert [s.name for s in data.sets] == ["gaussian_noise/1", "gaussian_noise/4"]
    # nothing requested is there
    with pytest.raises(DatasetError, match="none of the requested corruptions"):
        load_imagenet_c(root, corruptions=["snow"])


def _cifar_c(root: Path, n: int = 6, names=("gaussian_noise", "contrast")) -> np.ndarray:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, NUM_CLASSES, n)
    np.save(root / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    for c in names:
        np.save(root / f"{c}.npy", rng.integers(0, 255, (5 * n, 32, 32, 3), dtype=np.uint8))
    return labels


def test_cifar_c_reader_and_its_quirks(tmp_path):
    root = tmp_path / "c"
    labels = _cifar_c(root)
    data = load_cifar_c(root, num_classes=NUM_CLASSES)
    assert data.missing and "gaussian_noise" not in data.missing and len(data.sets) == 10
    np.testing.assert_array_equal(data.labels, labels)
    s3 = [s for s in data.sets if s.name == "contrast/3"][0]
    np.testing.assert_array_equal(data.image_array(s3, 2), np.load(root / "contrast.npy")[2 * 6 + 2])
    # a truncated .npy
    path = root / "contrast.npy"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"contrast.npy: truncated \.npy"):
        load_cifar_c(root, num_classes=NUM_CLASSES)
    data = load_cifar_c(root, num_classes=NUM_CLASSES, skip=True)
    assert len(data.skipped) == 5 and all(s.corruption == "gaussian_noise" for s in data.sets)
    # a label count that does not match the images
    np.save(root / "labels.npy", np.tile(labels[:5], 5).astype(np.uint8))
    with pytest.raises(DatasetError, match="label count mismatch: 30 images but labels.npy holds 25"):
        load_cifar_c(root, corruptions=["gaussian_noise"], num_classes=NUM_CLASSES)
    (root / "labels.npy").unlink()
    with pytest.raises(DatasetError, match="labels.npy"):
        load_cifar_c(root, num_classes=NUM_CLASSES)


# ------------------------------------------------------------------------------------------------ the tool
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A 4-class ResNet-18 (torchvision state dict) whose predictions vary between images."""
    d = tmp_path_factory.mktemp("c_ckpt")
    torch.manual_seed(21)
    net = build_model("resnet18", NUM_CLASSES)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    torch.save(net.state_dict(), d / "baseline_r18.pth")
    return d / "baseline_r18.pth"


def _net(ckpt: Path) -> nn.Module:
    net = torchvision.models.resnet18(num_classes=NUM_CLASSES)
    net.load_state_dict(torch.load(ckpt, weights_only=True))
    return net.eval()


def _hand_errors(net: nn.Module, images: list[torch.Tensor], labels: np.ndarray) -> float:
    with torch.inference_mode():
        pred = torch.cat([net(x[None]).argmax(1) for x in images]).numpy()
    return 100.0 * float(np.mean(pred != labels))


@pytest.fixture(scope="module")
def cifar(tmp_path_factory) -> dict[str, Path]:
    """A CIFAR-100-layout clean test set (12 images, 4 classes) and its CIFAR-C copy (3 corruptions, generated)."""
    d = tmp_path_factory.mktemp("cifar_c")
    rng = np.random.default_rng(3)
    images = rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    labels = [i % NUM_CLASSES for i in range(12)]
    write_cifar100(d, {"test": (images, labels)}, [f"c{i}" for i in range(NUM_CLASSES)])
    write_cifar_c(images, labels, d / "CIFAR-100-C", ["gaussian_noise", "contrast", "pixelate"], progress=False)
    return {"clean": d, "c": d / "CIFAR-100-C"}


def _cifar_args(ckpt: Path, cifar: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "--backbone", str(ckpt), "--dataset", "cifar100", "--corruption-root", str(cifar["c"]),
        "--data-root", str(cifar["clean"]), "--out", str(out), "--workers", "0", "--no-progress",
        "--batch-size", "7", "--device", "cpu", *extra,
    ]  # fmt: skip


def test_cifar_tool_numbers_equal_a_hand_written_pipeline(ckpt, cifar, tmp_path):
    out = tmp_path / "run"
    assert TOOL.run_single_threaded(_cifar_args(ckpt, cifar, out)) == 0
    rec = json.loads((out / "results.json").read_text())
    assert rec["kind"] == "corruption" and rec["dataset"] == "cifar100-c"
    assert rec["protocol"]["c_preprocess"] == "center-crop" and rec["protocol"]["c_source"]["kind"] == "generated"
    assert rec["missing_corruptions"] == [c for c in CORRUPTIONS + EXTRA_CORRUPTIONS if c not in
                                          ("gaussian_noise", "contrast", "pixelate")]  # fmt: skip
    net = _net(ckpt)
    mean, std = CIFAR100_CUTMIX_MEAN, CIFAR100_CUTMIX_STD
    norm = lambda a: TF.normalize(TF.to_tensor(Image.fromarray(a)), mean, std)  # noqa: E731
    labels = np.array([i % NUM_CLASSES for i in range(12)])
    for c in ("gaussian_noise", "contrast", "pixelate"):
        arr = np.load(cifar["c"] / f"{c}.npy")
        for s in range(1, 6):
            expected = _hand_errors(net, [norm(a) for a in arr[(s - 1) * 12 : s * 12]], labels)
            assert rec["errors"][c][str(s)] == pytest.approx(expected), (c, s)
    clean = [norm(a) for a in np.random.default_rng(3).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)]
    assert rec["clean_err"] == pytest.approx(_hand_errors(net, clean, labels))
    m = rec["metrics"]
    assert set(m) == {"augmix_mean_err_partial", "mean_err", "clean_err"}
    assert m["mean_err"] == pytest.approx(np.mean([np.mean(list(rec["errors"][c].values())) for c in rec["errors"]]))
    rows = read_csv(out / "per_image.csv")
    assert len(rows) == 12 and "gaussian_noise_s3" in rows[0]
    per_set = np.mean([float(r["contrast_s2"]) for r in rows])
    assert 100 * (1 - per_set) == pytest.approx(rec["errors"]["contrast"]["2"])
    assert np.mean([float(r["mean_err"]) for r in rows]) == pytest.approx(m["mean_err"])
    with np.load(out / "predictions.npz") as z:
        assert z["pred"].shape == (16, 12) and list(z["sets"][:2]) == ["clean", "gaussian_noise/1"]


def test_imagenet_c_generated_from_the_demo_with_clean_set(ckpt, demo_root, tmp_path):
    croot = tmp_path / "ImageNet-C"
    make = load_tool_main(MAKE, "make_corruptions_tool")
    assert make(["--layout", "imagenet-c", "--data-root", str(demo_root / "ILSVRC"), "--out", str(croot),
                 "--corruptions", "gaussian_noise", "fog", "--param-set", "tinyimagenet", "--image-size", "64",
                 "--no-progress"]) == 0  # fmt: skip
    files = sorted(croot.glob("fog/3/*/*.JPEG"))
    assert len(files) == 8 and Image.open(files[0]).size == (64, 64)
    args = ["--backbone", str(ckpt), "--dataset", "imagenet", "--corruption-root", str(croot), "--data-root",
            str(demo_root / "ILSVRC"), "--image-size", "64", "--workers", "0", "--no-progress", "--device", "cpu",
            "--batch-size", "5"]  # fmt: skip
    out = tmp_path / "center"
    assert TOOL.run_single_threaded([*args, "--out", str(out)]) == 0
    rec = json.loads((out / "results.json").read_text())
    net = _net(ckpt)
    rows = read_csv(out / "per_image.csv")
    from cutmix_transfer.datasets.imagenet import load_imagenet_val

    samples = {Path(s.path).name: s for s in load_imagenet_val(demo_root / "ILSVRC")}
    labels = np.array([samples[r["image_id"].split("/")[1]].label for r in rows])
    clean = [
        TF.normalize(TF.to_tensor(TF.center_crop(TF.resize(Image.open(samples[r["image_id"].split("/")[1]].path)
                                                           .convert("RGB"), 73), 64)), IMAGENET_MEAN, IMAGENET_STD)
        for r in rows
    ]  # fmt: skip
    assert rec["clean_err"] == pytest.approx(_hand_errors(net, clean, labels))
    for s in (1, 5):
        imgs = [TF.normalize(TF.to_tensor(Image.open(croot / "fog" / str(s) / r["image_id"]).convert("RGB")),
                             IMAGENET_MEAN, IMAGENET_STD) for r in rows]  # fmt: skip
        assert rec["errors"]["fog"][str(s)] == pytest.approx(_hand_errors(net, imgs, labels))
    assert rec["metrics"]["mce_partial"] == pytest.approx(rec["summary"]["mce"]["value"])
    assert "relative_mce_partial" in rec["metrics"] and rec["summary"]["mce"]["covers"] == ["gaussian_noise", "fog"]
    # --c-preprocess resize-crop: another protocol, other inputs
    out2 = tmp_path / "resize"
    assert TOOL.run_single_threaded([*args, "--out", str(out2), "--c-preprocess", "resize-crop"]) == 0
    rec2 = json.loads((out2 / "results.json").read_text())
    assert rec2["protocol"]["c_preprocess"] == "resize-crop" and rec2["protocol"] != rec["protocol"]
    assert rec2["clean_err"] == rec["clean_err"]


def test_unreadable_image_and_option_errors(ckpt, cifar, tmp_path, capsys):
    root = _imagenet_c(tmp_path / "c", wnids=("n00000001", "n00000002", "n00000003", "n00000004"), per=1)
    bad = root / "fog" / "2" / "n00000003" / "n00000003_0.JPEG"
    bad.write_bytes(b"not a jpeg")
    base = ["--backbone", str(ckpt), "--corruption-root", str(root), "--image-size", "32", "--device", "cpu"]
    line = one_line_error(TOOL.run(*base, "--out", str(tmp_path / "fail")))
    assert str(bad) in line and "--skip-unreadable" in line and not (tmp_path / "fail" / "results.json").exists()
    out = tmp_path / "skip"
    assert TOOL.main()([*base, "--out", str(out), "--skip-unreadable", "--workers", "0", "--no-progress"]) == 0
    rec = json.loads((out / "results.json").read_text())
    assert rec["skipped_unreadable"]["images"][0]["set"] == "fog/2" and rec["images_per_set"]["fog/2"] == 3
    assert read_csv(out / "per_image.csv")[2]["fog_s2"] == ""
    cases = (
        (["--c-preprocess", "squash"], "--c-preprocess"),
        (["--corruptions", "rain"], "--corruptions"),
        (["--severities", "6"], "--severities"),
        (["--max-images", "0"], "--max-images"),
        (["--std", "0", "1", "1"], "--std"),
    )
    TOOL.check_option_errors([*base, "--out", str(tmp_path / "x")], cases, capsys)


@pytest.mark.slow
def test_torchrun_two_processes_equal_single(ckpt, cifar, tmp_path):
    single = tmp_path / "single"
    assert TOOL.run_single_threaded(_cifar_args(ckpt, cifar, single, "--max-images", "9")) == 0
    out = tmp_path / "dist"
    proc_args = _cifar_args(ckpt, cifar, out, "--max-images", "9")
    from helpers import run_torchrun

    proc = run_torchrun(TOOL.path, proc_args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = json.loads((out / "results.json").read_text()), json.loads((single / "results.json").read_text())
    assert a["world_size"] == 2 and b["world_size"] == 1
    assert a["metrics"] == b["metrics"] and a["errors"] == b["errors"] and a["data"] == b["data"]
    assert (out / "per_image.csv").read_text() == (single / "per_image.csv").read_text()
    with np.load(out / "predictions.npz") as x, np.load(single / "predictions.npz") as y:
        for k in x.files:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)
