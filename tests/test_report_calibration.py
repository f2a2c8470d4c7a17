"""The report's calibration and classification cells: the ECE as a bootstrap statistic (against ECE computed by hand
on explicitly repeated rows and against torchmetrics), its swap-permutation pooling, the CIFAR-10 / CIFAR-100 /
ImageNet-sized columns, the data identity both classification tools give the same CIFAR images, and end to end: a
tiny train_cls run and test_cls on its checkpoint are one report cell, with an ECE column, intervals and the
reliability figure."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, EvalTool, eval_args, read_csv, write_cifar100
from PIL import Image

from cutmix_transfer.classification import CIFARDataset, train_classifier
from cutmix_transfer.clseval.data import load_cls_data
from cutmix_transfer.clseval.identity import reader_identity
from cutmix_transfer.report.calibration import ECEStatistic
from cutmix_transfer.report.per_image import per_image_statistic
from cutmix_transfer.report.significance import paired_test
from cutmix_transfer.report.table import add_intervals, build_rows, find_records, write_report
from cutmix_transfer.results import checkpoint_info, data_identity, make_record, write_record

CONFIGS = REPO / "configs" / "cls"
TOOL = EvalTool(REPO / "tools" / "test_cls.py")


def _ece_by_hand(conf: list[float], correct: list[float], bins: int = 15) -> float:
    """ECE (percent) written out: bin k holds k/bins <= c < (k+1)/bins, a confidence of exactly 1 its own bin;
    sum over bins of (images in bin / images) * |accuracy - mean confidence|."""
    members: dict[int, list[int]] = {}
    for i, c in enumerate(conf):
        k = bins if c == 1.0 else next(k for k in range(bins) if k / bins <= c < (k + 1) / bins)
        members.setdefault(k, []).append(i)
    total = 0.0
    for idx in members.values():
        acc = sum(correct[i] for i in idx) / len(idx)
        mean_conf = sum(conf[i] for i in idx) / len(idx)
        total += len(idx) / len(conf) * abs(acc - mean_conf)
    return 100.0 * total


def _sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.2, 1.0, n)
    conf[:3] = [1.0, 1.0, 0.5]  # the bin of exactly 1, and a bin edge (0.5 = 7.5 / 15 is inside bin 7)
    correct = (rng.uniform(size=n) < conf * 0.8).astype(np.float64)
    return conf, correct


def test_ece_statistic_equals_ece_on_repeated_rows_and_torchmetrics():
    from torchmetrics.functional.classification import binary_calibration_error

    conf, correct = _sample(57, 0)
    stat = ECEStatistic(conf, correct)
    assert stat(np.ones((1, 57)))[0] == pytest.approx(_ece_by_hand(list(conf), list(correct)), abs=1e-10)
    # torchmetrics' L1 calibration error of the (confidence, correct) pairs, 15 bins (binary form: same binning)
    tm = 100.0 * float(binary_calibration_error(torch.tensor(conf), torch.tensor(correct).long(), n_bins=15))
    assert stat(np.ones((1, 57)))[0] == pytest.approx(tm, abs=1e-4)
    rng = np.random.default_rng(1)
    w = rng.multinomial(57, np.full(57, 1 / 57), size=6).astype(np.float64)
    w[0] = 0.0
    w[0, [4, 9]] = [3, 2]  # most images dropped: empty bins add nothing
    got = stat(w)
    for b in range(len(w)):
        rows = np.repeat(np.arange(57), w[b].astype(int))  # the resample written out, image by image
        assert got[b] == pytest.approx(_ece_by_hand(list(conf[rows]), list(correct[rows])), abs=1e-10)


def test_ece_pooled_gives_the_swapped_checkpoints_ece_and_a_swap_test():
    n = 12  # at most significance.EXACT_SWAP_LIMIT: every swap is enumerated
    ca, ka = _sample(n, 2)
    cb, kb = _sample(n, 3)
    a, b = ECEStatistic(ca, ka), ECEStatistic(cb, kb)
    pooled = a.pooled(b)

    def swapped(sel: np.ndarray) -> float:  # a's ECE minus b's with the images in `sel` exchanged, by hand
        ea = _ece_by_hand(list(np.where(sel, cb, ca)), list(np.where(sel, kb, ka)))
        eb = _ece_by_hand(list(np.where(sel, ca, cb)), list(np.where(sel, ka, kb)))
        return ea - eb

    s = (np.arange(n) % 3 == 0).astype(np.float64)  # swap images 0, 3, 6, 9
    got = pooled(np.vstack([np.hstack([1 - s, s]), np.hstack([s, 1 - s])]))
    assert got[0] - got[1] == pytest.approx(swapped(s.astype(bool)), abs=1e-10)
    test = paired_test(a, b, n)  # not a per-image mean: the swap permutation test
    observed = swapped(np.zeros(n, bool))
    every = [swapped(((k >> np.arange(n)) & 1).astype(bool)) for k in range(2**n)]
    p = np.mean(np.abs(every) >= abs(observed) - 1e-9 * max(1.0, abs(observed)))
    assert test.method == "exact swap permutation" and test.difference == pytest.approx(observed, abs=1e-10)
    assert test.p_value == pytest.approx(p, abs=1e-12)


def _record(tmp: Path, name: str, dataset: str, sha: str, metrics: dict, created: str) -> Path:
    ids = [str(i) for i in range(10)]
    rec = make_record(
        "classification",
        checkpoint_info(tmp / f"{name}.pth", sha, "resnet18", name),
        dataset,
        "test",
        metrics,
        data=data_identity(dataset, "test", tmp / dataset, ids),
        protocol={"input_size": 32},
    )
    rec["created"] = created
    return write_record(tmp / f"{name}_{dataset}", rec)


def test_cifar10_cifar100_and_imagenet_columns(tmp_path):
    _record(tmp_path, "cutmix", "cifar10", "a" * 64, {"top1_err": 5.0, "ece": 2.0}, "2026-01-01T00:00:00")
    _record(tmp_path, "cutmix", "cifar100", "a" * 64, {"top1_err": 20.0, "ece": 3.0}, "2026-01-01T00:00:01")
    _record(tmp_path, "cutmix", "imagenet", "a" * 64, {"top1_err": 21.4, "ece": 4.0}, "2026-01-01T00:00:02")
    _record(tmp_path, "baseline", "imagenet", "b" * 64, {"top1_err": 30.0}, "2026-01-01T00:00:03")
    rows = {r.label: r for r in build_rows(find_records([tmp_path]))}
    assert rows["cutmix"].values == {
        "CIFAR-10 top-1 err": 5.0,
        "CIFAR-10 ECE": 2.0,
        "CIFAR-100 top-1 err": 20.0,
        "CIFAR-100 ECE": 3.0,
        "top-1 err": 21.4,
        "ECE": 4.0,
    }
    assert rows["baseline"].values == {"top-1 err": 30.0}


def test_both_tools_name_the_same_cifar_images_alike(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    folder = write_cifar100(tmp_path / "c100", {"test": (images, [0, 1, 2, 0, 1, 2])}, ["a", "b", "c"])
    c10 = tmp_path / "c10" / "cifar-10-batches-py"
    c10.mkdir(parents=True)
    rows = images.transpose(0, 3, 1, 2).reshape(6, -1)
    (c10 / "test_batch").write_bytes(pickle.dumps({b"data": rows, b"labels": [0, 1, 2, 0, 1, 2]}, protocol=2))
    (c10 / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b", b"c"]}, protocol=2))
    spec = dict(preset="resize_test", size=32)
    for name, parent, inner in (("cifar100", tmp_path / "c100", folder), ("cifar10", tmp_path / "c10", c10)):
        # train_cls's config names the parent folder and lets the reader find the variant; test_cls the inner one
        val = dict(type="CIFARCls", root=str(parent), split="test", transform=spec)
        got_name, root, ids = reader_identity(CIFARDataset(str(parent), "test", spec), val)
        test = load_cls_data(name, inner, 32, (0, 0, 0), (1, 1, 1))
        assert (got_name, root, ids) == (name, inner.resolve(), test.image_ids)
        assert data_identity(got_name, "test", root, ids) == data_identity(test.name, test.split, test.root, ids)


def _tiny_train_config(tmp_path: Path, demo_root: Path) -> Path:
    """demo_baseline shrunk to the shared tiny demo (4 classes, 64 px CUB, 16 train / 8 test images), one epoch."""
    data_root = demo_root / "CUB_200_2011"
    text = f"""
_base_ = {str(CONFIGS / 'demo_baseline.py')!r}
data_root = {str(data_root)!r}
model = dict(num_classes=4)
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                        dataset=dict(root=data_root, transform=dict(size=64)))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                      dataset=dict(root=data_root, transform=dict(size=64)))
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1))
visualizer = dict(vis_backends=[])
"""
    path = tmp_path / "tiny_baseline.py"
    path.write_text(text)
    return path


def test_train_cls_and_test_cls_of_one_checkpoint_are_one_cell(tmp_path, demo_root):
    torch.set_num_threads(1)
    out = train_classifier(_tiny_train_config(tmp_path, demo_root), work_dir=str(tmp_path / "train"), seed=1)
    trained = json.loads(Path(out["record"]).read_text())
    args = eval_args("--backbone", out["checkpoint"], "cub", demo_root / "CUB_200_2011", tmp_path / "test")
    assert TOOL.run_single_threaded([*args, "--image-size", "64"]) == 0
    tested = json.loads((tmp_path / "test" / "results.json").read_text())
    assert trained["dataset"] == tested["dataset"] == "cub" and trained["split"] == tested["split"] == "test"
    assert trained["data"] == tested["data"]
    assert trained["protocol"] == tested["protocol"]  # provenance (tool, layout, statistics' source) stays outside
    assert tested["normalization_source"] == "checkpoint meta" and tested["tool"] == "test_cls"
    assert trained["train_seed"] == tested["train_seed"] == 1  # the seed from the checkpoint's meta
    assert trained["checkpoint"]["sha256"] == tested["checkpoint"]["sha256"]
    # the same model on the same inputs: the same predictions, image for image
    train_rows, test_rows = (
        read_csv(tmp_path / "train" / "per_image.csv"),
        read_csv(tmp_path / "test" / "per_image.csv"),
    )
    assert [(r["image_id"], r["pred"]) for r in train_rows] == [(r["image_id"], r["pred"]) for r in test_rows]
    assert trained["metrics"]["top1_err"] == tested["metrics"]["top1_err"]

    records = find_records([tmp_path / "train", tmp_path / "test"])
    notes: list[str] = []
    (row,) = build_rows(records, notes)
    assert set(row.values) == {"top-1 err", "ECE"}  # one cell each: no '[data k]' / '[protocol p]' split
    assert row.sources["top-1 err"] == str(tmp_path / "test" / "results.json")  # the newest record is shown
    rerun = [n for n in notes if n.startswith("Rerun")]
    assert len(rerun) == 1 and str(tmp_path / "train" / "results.json") in rerun[0] and "top-1 err" in rerun[0]
    assert row.values["ECE"] == tested["metrics"]["ece"]
    # the ECE over the per-image rows reproduces the record's; its interval comes from the report's draws
    src = tmp_path / "test" / "results.json"
    ids, stat = per_image_statistic(src, tested, "ece")
    assert ids == sorted(r["image_id"] for r in test_rows)
    assert stat(np.ones((1, len(ids))))[0] == pytest.approx(tested["metrics"]["ece"], abs=1e-9)
    by_id = {r["image_id"]: r for r in test_rows}
    conf = [float(by_id[i]["confidence"]) for i in ids]
    assert stat(np.ones((1, len(ids))))[0] == pytest.approx(
        _ece_by_hand(conf, [float(by_id[i]["correct_top1"]) for i in ids]), abs=1e-9
    )
    add_intervals([row], records, resamples=200, seed=0, notes=notes)
    assert row.intervals["ECE"].low <= row.values["ECE"] <= row.intervals["ECE"].high
    paths = write_report([tmp_path / "train", tmp_path / "test"], tmp_path / "report", bootstrap=100)
    assert paths["reliability"] == tmp_path / "report" / "reliability.png"
    with Image.open(paths["reliability"]) as im:
        assert im.size[0] > 300 and im.size[1] > 300
    assert "| ECE" in (tmp_path / "report" / "report.md").read_text()


def test_reliability_figure_overlays_every_checkpoint(tmp_path):
    """Two checkpoints' test_cls-style per-image rows on CIFAR-100: one panel, two curves (looked at by eye)."""
    for name, sha, seed, over in (("baseline", "c" * 64, 4, 0.8), ("cutmix", "d" * 64, 5, 0.95)):
        conf, correct = _sample(300, seed)
        correct = (np.random.default_rng(seed + 100).uniform(size=300) < conf * over).astype(int)
        path = _record(tmp_path, name, "cifar100", sha, {"top1_err": 100 * (1 - correct.mean())}, f"2026-01-0{seed}")
        lines = ["image_id,index,label,pred,confidence,correct_top1,correct_top5"]
        lines += [f"{i},{i},0,{1 - c},{float(conf[i])!r},{c},1" for i, c in enumerate(correct)]
        (path.parent / "per_image.csv").write_text("\n".join(lines) + "\n")
        rec = json.loads(path.read_text())
        rec["metrics"]["ece"] = _ece_by_hand(list(conf), list(correct.astype(float)))
        path.write_text(json.dumps(rec))
    paths = write_report([tmp_path], tmp_path / "report", bootstrap=50)
    with Image.open(paths["reliability"]) as im:
        assert im.size[0] > 300
    md = (tmp_path / "report" / "report.md").read_text()
    assert "CIFAR-100 ECE" in md
