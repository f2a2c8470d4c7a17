"""The report's corruption cells (report/corruption.py): each headline metric read back from per_image.csv as a
statistic over clean images equals the record's number on all-ones weights, and on integer counts equals the
metric recomputed here, by its published formula, on explicitly duplicated rows (a draw carries all of an image's
corruption x severity versions); the complete case is a mean statistic (the sign-flip test); end to end, two tiny
checkpoints through tools/make_corruptions.py-style copies and tools/corruption_eval.py feed write_report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import REPO, EvalTool, write_cifar100
from PIL import Image

from cutmix_transfer.backbones import build_model
from cutmix_transfer.corruptions.metrics import ALEXNET_CLEAN_ERR, ALEXNET_ERR, error_table, summarize_errors
from cutmix_transfer.corruptions.write import write_cifar_c
from cutmix_transfer.datasets.corruptions import CORRUPTIONS
from cutmix_transfer.report.bootstrap import MeanStatistic
from cutmix_transfer.report.corruption import corruption_per_image
from cutmix_transfer.report.table import write_report

TOOL = EvalTool(REPO / "tools" / "corruption_eval.py")
NUM_CLASSES = 4


# ------------------------------------------------------------------------------------------------ the statistic
def _write_run(folder: Path, sets, correct: np.ndarray, clean: np.ndarray | None, alexnet: bool) -> dict:
    """per_image.csv as corruption_eval writes it (1 correct, 0 wrong, '' not evaluated: NaN in `correct`) and the
    record's summary from the library's error_table + summarize_errors (the tool's own path)."""
    folder.mkdir(parents=True)
    n = correct.shape[1]
    cols = [f"{c}_s{s}" for c, s in sets]
    with open(folder / "per_image.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "image_id", "label"] + (["clean_correct"] if clean is not None else []) + cols)
        for i in reversed(range(n)):  # file order is not id order
            cells = ["" if np.isnan(v) else int(v) for v in correct[:, i]]
            w.writerow([i, f"img{i:03d}", 0] + ([int(clean[i])] if clean is not None else []) + cells)
    evaluated = ~np.isnan(correct)
    wrong = (np.nan_to_num(correct, nan=1.0) == 0) & evaluated
    table, pooled, _ = error_table(sets, wrong, evaluated)
    clean_err = None if clean is None else 100.0 * float(np.mean(1 - clean))
    return summarize_errors(table, clean_err, pooled, alexnet=alexnet)


def _mce_by_hand(correct: np.ndarray, sets, clean: np.ndarray | None = None) -> tuple[float, float | None]:
    """AugMix compute_mce and robustness_metrics' relative mCE written out from the outcome table (sets x images,
    NaN = not evaluated): E(s, c) over the images evaluated in (s, c)."""
    err = {(c, s): 100.0 * float(np.nanmean(1.0 - correct[k])) for k, (c, s) in enumerate(sets)}
    ces, rel = [], []
    for c in CORRUPTIONS:
        e = [err[(c, s)] for s in range(1, 6)]
        ces.append(100.0 * np.mean(e) / (100.0 * ALEXNET_ERR[c]))
        if clean is not None:
            e_clean = 100.0 * float(np.mean(1.0 - clean))
            rel.append(100.0 * (np.mean(e) - e_clean) / (100.0 * (ALEXNET_ERR[c] - ALEXNET_CLEAN_ERR)))
    return float(np.mean(ces)), (float(np.mean(rel)) if rel else None)


def _augmix_by_hand(correct: np.ndarray, sets) -> float:
    """AugMix cifar.py test_c: per corruption the error over all its images (severities pooled), then the mean."""
    names = [c for c in CORRUPTIONS if any(c == cc for cc, _ in sets)]
    out = []
    for c in names:
        rows = correct[[k for k, (cc, _) in enumerate(sets) if cc == c]]
        out.append(100.0 * float(np.nanmean(1.0 - rows)))
    return float(np.mean(out))


IMAGENET_SETS = [(c, s) for c in CORRUPTIONS for s in range(1, 6)]


@pytest.mark.parametrize("holes", [False, True])
def test_mce_statistic_equals_record_and_duplicated_rows(tmp_path, holes):
    rng = np.random.default_rng(5)
    n = 9
    correct = (rng.random((len(IMAGENET_SETS), n)) < 0.4).astype(float)
    clean = (rng.random(n) < 0.7).astype(float)
    if holes:  # skipped unreadable versions: E(s, c) over different images, no longer a per-image mean
        correct[[3, 17, 40], [0, 4, 8]] = np.nan
    summary = _write_run(tmp_path / "run", IMAGENET_SETS, correct, clean, alexnet=True)
    ids, mce = corruption_per_image(tmp_path / "run", {"kind": "corruption"}, "mce")
    _, rel = corruption_per_image(tmp_path / "run", {"kind": "corruption"}, "relative_mce")
    assert ids == [f"img{i:03d}" for i in range(n)]
    assert isinstance(mce, MeanStatistic) != holes  # complete: the mean of a per-image score
    ones = np.ones((1, n))
    assert float(mce(ones)[0]) == pytest.approx(summary["mce"]["value"], abs=1e-9)
    assert float(rel(ones)[0]) == pytest.approx(summary["relative_mce"]["value"], abs=1e-9)
    assert float(mce(ones)[0]) == pytest.approx(_mce_by_hand(correct, IMAGENET_SETS)[0], abs=1e-9)
    counts = np.array([[2, 0, 1, 3, 0, 1, 1, 0, 1]], dtype=float)  # ids sorted = image index order here
    dup = np.repeat(np.arange(n), counts[0].astype(int))
    by_hand = _mce_by_hand(correct[:, dup], IMAGENET_SETS, clean[dup])
    assert float(mce(counts)[0]) == pytest.approx(by_hand[0], abs=1e-9)
    assert float(rel(counts)[0]) == pytest.approx(by_hand[1], abs=1e-9)


@pytest.mark.parametrize("severities", [(1, 2, 3, 4, 5), (2, 4)])
@pytest.mark.parametrize("holes", [False, True])
def test_cifar_mean_error_statistic(tmp_path, holes, severities):
    sets = [(c, s) for c in ("gaussian_noise", "contrast", "pixelate") for s in severities]  # --severities 2 4
    rng = np.random.default_rng(7)
    n = 8
    correct = (rng.random((len(sets), n)) < 0.5).astype(float)
    if holes:
        correct[[2, 5], [1, 6]] = np.nan
    summary = _write_run(tmp_path / "run", sets, correct, None, alexnet=False)
    assert summary["augmix_mean_err"]["partial"]
    _, stat = corruption_per_image(tmp_path / "run", {"kind": "corruption"}, "augmix_mean_err_partial")
    _, mean_err = corruption_per_image(tmp_path / "run", {"kind": "corruption"}, "mean_err")
    assert float(stat(np.ones((1, n)))[0]) == pytest.approx(summary["augmix_mean_err"]["value"], abs=1e-9)
    if not holes:  # the unnormalised mean (a mean over severities, equal to the pooled one without holes)
        assert float(mean_err(np.ones((1, n)))[0]) == pytest.approx(summary["mean_err"], abs=1e-9)
    counts = np.array([[0, 3, 1, 1, 2, 0, 1, 0]], dtype=float)
    dup = np.repeat(np.arange(n), counts[0].astype(int))
    assert float(stat(counts)[0]) == pytest.approx(_augmix_by_hand(correct[:, dup], sets), abs=1e-9)
    # a metric the file cannot give: no clean column -> no relative mCE
    assert corruption_per_image(tmp_path / "run", {"kind": "corruption"}, "relative_mce") is None


# ------------------------------------------------------------------------------------------------ end to end
def _ckpt(path: Path, method: str, seed: int) -> Path:
    torch.manual_seed(seed)
    net = build_model("resnet18", NUM_CLASSES)
    for m in net.modules():  # non-trivial BN statistics, so the predictions vary between images
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.3, 2.0)
    meta = {"cutmix_transfer": {"arch": "resnet18", "method": method, "num_classes": NUM_CLASSES}}
    torch.save({"meta": meta, "state_dict": {f"backbone.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


def _imagenet_c(root: Path, per: int = 2) -> Path:
    """All 15 corruptions x 5 severities in the ImageNet-C layout, 32 px JPEGs, 4 classes x `per` images."""
    rng = np.random.default_rng(0)
    for c in CORRUPTIONS:
        for s in range(1, 6):
            for w in [f"n0000000{k}" for k in range(1, NUM_CLASSES + 1)]:
                d = root / c / str(s) / w
                d.mkdir(parents=True)
                for i in range(per):
                    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{w}_{i}.JPEG")
    return root


def test_report_end_to_end(tmp_path):
    ck = {m: _ckpt(tmp_path / f"{m}.pth", m, seed) for m, seed in (("baseline", 1), ("cutmix", 2))}
    rng = np.random.default_rng(3)
    images = rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    labels = [i % NUM_CLASSES for i in range(12)]
    write_cifar100(tmp_path / "cifar", {"test": (images, labels)}, [f"c{i}" for i in range(NUM_CLASSES)])
    write_cifar_c(images, labels, tmp_path / "C100C", ["gaussian_noise", "contrast", "pixelate"], progress=False)
    inc = _imagenet_c(tmp_path / "INC")
    common = ["--workers", "0", "--no-progress", "--device", "cpu", "--batch-size", "16"]
    for m, path in ck.items():
        out = tmp_path / "runs" / f"c100_{m}"
        args = ["--backbone", str(path), "--dataset", "cifar100", "--corruption-root", str(tmp_path / "C100C"),
                "--data-root", str(tmp_path / "cifar"), "--out", str(out), *common]  # fmt: skip
        assert TOOL.run_single_threaded(args) == 0
        args = ["--backbone", str(path), "--dataset", "imagenet", "--corruption-root", str(inc), "--image-size",
                "32", "--out", str(tmp_path / "runs" / f"inc_{m}"), *common]  # fmt: skip
        assert TOOL.run_single_threaded(args) == 0
    recs = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("results.json")}
    assert "mce" in recs["inc_cutmix"]["metrics"] and "augmix_mean_err_partial" in recs["c100_cutmix"]["metrics"]
    for name, rec in recs.items():  # the file reproduces the record's number exactly
        key = "mce" if name.startswith("inc") else "augmix_mean_err_partial"
        ids, stat = corruption_per_image(tmp_path / "runs" / name, rec, key)
        assert isinstance(stat, MeanStatistic)
        assert float(stat(np.ones((1, len(ids))))[0]) == pytest.approx(rec["metrics"][key], abs=1e-9)

    paths = write_report([tmp_path / "runs"], tmp_path / "report", paper=True, bootstrap=200, seed=0)
    md = paths["markdown"].read_text()
    head = md.splitlines()[0]
    assert "| ImageNet-C mCE |" in head and "| CIFAR-100-C err (partial) |" in head
    assert "| CIFAR-100-C err |" not in head  # a partial value never in the full column
    table = {line.split(" | ")[0].strip("| "): line for line in md.splitlines()[2:] if line.startswith("|")}
    cols = [c.strip() for c in head.strip("|").split("|")]
    mce_col = cols.index("ImageNet-C mCE")
    for m in ("baseline", "cutmix"):
        cell = [c.strip() for c in table[m].strip("|").split("|")][mce_col]
        assert cell.startswith(f"{recs[f'inc_{m}']['metrics']['mce']:.2f} [")  # value and its interval
    ref = [c.strip() for c in table["reference: hendrycks/robustness README: ResNet-50 baseline"].strip("|").split("|")]
    assert ref[mce_col] == "76.70"
    assert "partial CIFAR-C mean error (AugMix) over 3 of the 15 corruptions" in md
    assert "No interval" not in md
    diff = [line for line in md.splitlines() if "ImageNet-C mCE" in line and "cutmix" in line and "baseline" in line]
    assert len(diff) == 1 and "sign-flip" in diff[0], md  # paired CutMix - baseline, on the same clean images
    assert "8 images" in diff[0]  # resampled by clean image: 8 draw units, not 8 x 75 versions
    for name in ("corruption_imagenet", "corruption_cifar100"):
        assert paths[name].name == f"{name}.png" and paths[name].stat().st_size > 10_000


def _record(method: str, sha: str, preprocess: str) -> dict:
    errors = {c: {str(s): 50.0 + s for s in range(1, 6)} for c in ("fog", "contrast")}
    return {
        "record_version": 2,
        "kind": "corruption",
        "created": f"2026-01-01T00:00:0{len(method)}",
        "checkpoint": {"sha256": sha, "method": method, "path": f"{method}.pth"},
        "dataset": "imagenet-c",
        "split": "val",
        "data": {"dataset": "imagenet-c", "split": "val", "root": "/c", "images_sha256": "ab", "num_images": 4},
        "protocol": {"c_preprocess": preprocess},
        "metrics": {"mce_partial": 70.0},
        "errors": errors,
        "summary": {"mce": {"partial": True, "label": "partial mCE over 2 of the 15 corruptions"}},
    }


def test_figures_keyed_on_data_and_protocol(tmp_path):
    """Records of one dataset under two protocols: two figures, never one overlay, and a note saying which is
    which; the partial coverage is named."""
    from cutmix_transfer.report.corruption import corruption_notes, write_corruption_figures

    recs = [
        (tmp_path / "a" / "results.json", _record("baseline", "1" * 64, "center-crop")),
        (tmp_path / "b" / "results.json", _record("cutmix", "2" * 64, "center-crop")),
        (tmp_path / "c" / "results.json", _record("cutmix", "2" * 64, "resize-crop")),
    ]
    paths = write_corruption_figures(recs, tmp_path)
    assert sorted(paths) == ["corruption_imagenet_1", "corruption_imagenet_2"]
    notes = corruption_notes(recs)
    split = [n for n in notes if n.startswith("Corruption figures of imagenet-c")]
    assert len(split) == 1 and 'c_preprocess="center-crop"' in split[0] and 'c_preprocess="resize-crop"' in split[0]
    assert any("partial mCE over 2 of the 15 corruptions" in n for n in notes)
