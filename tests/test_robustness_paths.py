"""tools/robustness_eval.py paths test_robustness.py leaves out, end to end in process on the demo ImageNet val
(8 images, 4 classes): --max-images (a seeded subset, each row still its own image, pairs drawn inside the subset)
and --skip-unreadable in the in-between pass, with the unreadable image in pairs in the middle of the pair order
(every kept pair keeps the predictions it has in a run without the bad file). Nothing here depends on which image
lambda weighs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, EvalTool, eval_args, read_csv, resize_crop_resnet18_logits, varied_resnet18

from cutmix_transfer.datasets.imagenet import load_imagenet_val

TOOL = EvalTool(REPO / "tools" / "robustness_eval.py")
NUM_CLASSES = 4  # conftest.DEMO_KWARGS
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
INBETWEEN = ["--tests", "inbetween", "--mixup-ratios", "0", "0.5", "1", "--cutmix-sides", "0", "112", "224"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A 4-class ResNet-18 state dict with non-trivial BN statistics (predictions vary between images)."""
    d = tmp_path_factory.mktemp("rob_paths")
    torch.save(varied_resnet18(NUM_CLASSES).state_dict(), d / "r18.pth")
    return d / "r18.pth"


def _clean_preds(ckpt: Path, paths: list[Path], size: int) -> list[int]:
    """The clean prediction of each image: the ImageNet val pipeline with ImageNet normalisation, written out."""
    return (
        resize_crop_resnet18_logits(ckpt, paths, size, MEAN.flatten().tolist(), STD.flatten().tolist(), NUM_CLASSES)
        .argmax(1)
        .tolist()
    )


def _run(root: Path, ckpt: Path, out: Path, *extra: str) -> dict:
    assert TOOL.main()(eval_args("--backbone", ckpt, "imagenet", root, out, "--image-size", "64", *extra)) == 0
    return json.loads((out / "results.json").read_text())


def test_max_images_evaluates_a_seeded_subset_end_to_end(demo_root, ckpt, tmp_path):
    root = demo_root / "ILSVRC"
    samples = load_imagenet_val(root)
    extra = ["--tests", "fgsm", "inbetween", "--eps", "8", "--pairs", "5", "--batch-size", "2", *INBETWEEN[2:]]
    subsets = {}
    for seed in ("4", "5"):
        out = tmp_path / f"seed{seed}"
        rec = _run(root, ckpt, out, "--max-images", "3", "--seed", seed, *extra)
        assert (rec["num_images"], rec["num_images_selected"], rec["num_images_in_split"]) == (3, 3, 8)
        rows = read_csv(out / "per_image.csv")
        idx = [int(r["index"]) for r in rows]
        assert len(set(idx)) == 3 and idx == sorted(idx) and set(idx) <= set(range(8))
        assert [r["image_id"] for r in rows] == [samples[i].image_id for i in idx]
        assert [int(r["label"]) for r in rows] == [samples[i].label for i in idx]
        assert [int(r["clean_pred"]) for r in rows] == _clean_preds(ckpt, [samples[i].path for i in idx], 64)
        arrays = np.load(out / "predictions.npz")
        assert arrays["indices"].tolist() == idx
        assert set(arrays["pairs"].ravel().tolist()) <= set(idx) and len(arrays["pairs"]) == rec["num_pairs"] == 5
        labels = arrays["pair_labels"]
        assert (labels[:, 0] != labels[:, 1]).all()
        assert labels.tolist() == [[samples[a].label, samples[b].label] for a, b in arrays["pairs"]]
        subsets[seed] = idx
    assert subsets["4"] != subsets["5"]  # the subset follows --seed
    every = _run(root, ckpt, tmp_path / "all", "--max-images", "100", "--tests", "fgsm", "--eps", "8")
    assert every["num_images"] == every["num_images_selected"] == 8


def test_skip_unreadable_in_the_inbetween_pass_keeps_each_pair_its_predictions(demo_root, ckpt, tmp_path, capsys):
    root = tmp_path / "ILSVRC"
    shutil.copytree(demo_root / "ILSVRC", root)
    samples = load_imagenet_val(root)
    extra = [*INBETWEEN, "--pairs", "12", "--seed", "2", "--batch-size", "5"]
    clean_rec = _run(root, ckpt, tmp_path / "clean", *extra)
    clean = np.load(tmp_path / "clean" / "predictions.npz")
    pairs = clean["pairs"]
    assert clean_rec["num_pairs"] == len(pairs) == 12
    # the bad image: one of a pair in the middle of the order, not in every pair, with kept pairs after its last
    bad = int(pairs[6, 0])
    hit = [j for j, (a, b) in enumerate(pairs) if bad in (a, b)]
    assert 0 < len(hit) < 12 and hit[-1] < 11 and hit[0] > 0, hit
    samples[bad].path.write_bytes(b"this is not a jpeg")

    capsys.readouterr()
    args = eval_args("--backbone", ckpt, "imagenet", root, tmp_path / "fail", "--image-size", "64", *extra)
    assert TOOL.main()(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(samples[bad].path) in err[0] and "--skip-unreadable" in err[0], err
    assert not (tmp_path / "fail" / "results.json").exists()

    rec = _run(root, ckpt, tmp_path / "skip", *extra, "--skip-unreadable")
    got = np.load(tmp_path / "skip" / "predictions.npz")
    kept = [j for j in range(12) if j not in hit]
    assert rec["num_pairs"] == len(kept) and rec["skipped_pairs"]["count"] == len(hit)
    assert [p["index"] for p in rec["skipped_pairs"]["pairs"]] == hit
    for p in rec["skipped_pairs"]["pairs"]:
        a, b = pairs[p["index"]]
        assert p["images"] == f"{samples[a].image_id} + {samples[b].image_id}"
        assert samples[bad].image_id in p["images"] and "unreadable" in p["error"]
    assert got["pairs"].tolist() == pairs[kept].tolist()
    assert np.array_equal(got["mixup_pred"], clean["mixup_pred"][kept])
    assert np.array_equal(got["cutmix_pred"], clean["cutmix_pred"][kept])
    assert rec["skipped_unreadable"]["count"] == 0  # no image pass ran
