"""The WSOL evaluator (cutmix_transfer.wsol.evaluate and its modules, tools/wsol_eval.py) checked against
independent computations: hand-computed CAMs fed through the pipeline, the per-threshold oracle on the saved maps,
an independent CAM and PxAP, determinism, torchrun sharding, and every user error as a one-line exit code 2 of the
real tool."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import REPO, EvalTool, eval_args, one_line_error, read_csv
from PIL import Image

from cutmix_transfer.backbones import build_from_checkpoint, build_model
from cutmix_transfer.cam import class_activation_maps, normalize_cams
from cutmix_transfer.datasets.cub import load_cub
from cutmix_transfer.datasets.imagenet import load_imagenet_val
from cutmix_transfer.datasets.wsol_data import load_eval_data
from cutmix_transfer.datasets.wsol_metadata import write_wsol_metadata
from cutmix_transfer.errors import DatasetError
from cutmix_transfer.io import sha256_file
from cutmix_transfer.wsol import evaluate
from cutmix_transfer.wsol.boxes import cam_thresholds, max_iou_curve_reference
from cutmix_transfer.wsol.inputs import load_image_224, load_mask_224
from cutmix_transfer.wsol.model import compute_scoremaps

TOOL = EvalTool(REPO / "tools" / "wsol_eval.py")
NUM_CLASSES = 4  # conftest.DEMO_KWARGS
THR = cam_thresholds(0.01)
BATCH_8 = ("--batch-size", "8")


# ------------------------------------------------------------------------------------------------ helpers
def _hand_boxes_224(boxes: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """GT boxes rescaled to 224 by hand: int(x * 224 / W), int(y * 224 / H)."""
    w, h = size_wh
    return np.array(
        [
            [int(b[0] * 224 / w), int(b[1] * 224 / h), int(b[2] * 224 / w), int(b[3] * 224 / h)]
            for b in np.asarray(boxes, dtype=np.float64)
        ],
        dtype=np.int64,
    )


def _hand_iou(a, b) -> float:
    """IoU with the +1 (inclusive pixel) convention."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = iw * ih
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return inter / union if union > 0 else 0.0


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def _manual_input(path: Path) -> torch.Tensor:
    """(1, 3, 224, 224): PIL bilinear resize, /255, ImageNet mean/std, written out by hand."""
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB").resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255.0
    arr = (arr - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())[None]


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """Two 4-class ResNet-18 checkpoints in real formats: a torchvision state dict and a CutMix-PyTorch file."""
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(1)
    plain = build_model("resnet18", NUM_CLASSES)
    torch.save(plain.state_dict(), d / "baseline_r18.pth")
    torch.manual_seed(2)
    cut = build_model("resnet18", NUM_CLASSES)
    torch.save(
        {
            "epoch": 3,
            "arch": "resnet18",
            "best_err1": 50.0,
            "best_err5": 0.0,
            "state_dict": {f"module.{k}": v for k, v in cut.state_dict().items()},
        },
        d / "cutmix_r18.pth.tar",
    )
    torch.manual_seed(3)
    torch.save(build_model("resnet18", 5).state_dict(), d / "five_classes.pth")
    return {"plain": d / "baseline_r18.pth", "cutmix": d / "cutmix_r18.pth.tar", "five": d / "five_classes.pth"}


@pytest.fixture(scope="module")
def cub_run(demo_root, ckpts, tmp_path_factory) -> Path:
    """The real tool, in-process, on the demo CUB test split: --save-cams --vis 2. One intra-op thread, as each
    torchrun worker uses: the thread count changes the convolutions' float rounding, the batch size does not."""
    out = tmp_path_factory.mktemp("cub_run")
    cub = demo_root / "CUB_200_2011"
    rc = TOOL.run_single_threaded(
        eval_args("--backbone", ckpts["plain"], "cub", cub, out, "--save-cams", "--vis", "2", *BATCH_8)
    )
    assert rc == 0
    return out


def _fake_scoremaps(monkeypatch, maps: np.ndarray, logits: np.ndarray, labels: list[int]) -> None:
    """Replace the model's CAMs with known maps (dataset order); checks the GT class is what gets asked for."""
    state = {"pos": 0}

    def fake(model, images, batch_labels, method="cam"):
        p, b = state["pos"], images.shape[0]
        assert batch_labels.tolist() == labels[p : p + b]
        state["pos"] += b
        return maps[p : p + b].astype(np.float32), logits[p : p + b].astype(np.float32)

    monkeypatch.setattr(evaluate, "compute_scoremaps", fake)


# ------------------------------------------------------------------------------------------------ pipeline
def test_image_pipeline_matches_manual(demo_root):
    path = next((demo_root / "CUB_200_2011" / "images").rglob("*.jpg"))
    tensor, rgb, size = load_image_224(path)
    assert tensor.shape == (3, 224, 224) and rgb.shape == (224, 224, 3) and size == _image_size(path)
    torch.testing.assert_close(tensor[None], _manual_input(path), atol=1e-6, rtol=0)


def test_input_size_changes_the_network_input_only(demo_root, ckpts):
    """--image-size 96 (a backbone trained at 96 px): the network sees a 96 px PIL-bilinear image, the CAM is
    still scored in the 224 frame and equals the 96 px CAM resized by the same bicubic + min-max step."""
    path = next((demo_root / "CUB_200_2011" / "images").rglob("*.jpg"))
    tensor, rgb, _ = load_image_224(path, input_size=96)
    assert tensor.shape == (3, 96, 96) and rgb.shape == (224, 224, 3)
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB").resize((96, 96), Image.BILINEAR), dtype=np.float32) / 255.0
    arr = (arr - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    torch.testing.assert_close(tensor, torch.from_numpy(arr.transpose(2, 0, 1).copy()), atol=1e-6, rtol=0)
    model, _, _ = build_from_checkpoint(ckpts["plain"], wsol=True, head="require")
    maps, logits = compute_scoremaps(model.eval(), tensor[None], torch.tensor([1]))
    assert maps.shape == (1, 224, 224) and logits.shape == (1, NUM_CLASSES)
    cams, _ = class_activation_maps(model, tensor[None], torch.tensor([1]))
    np.testing.assert_allclose(maps, normalize_cams(cams, (224, 224)), atol=1e-6)
    assert evaluate.WSOLEvalConfig(backbone="x").input_size == 224


def test_known_cams_hand_computed_imagenet(demo_root, ckpts, tmp_path, monkeypatch):
    """Rectangles as CAMs (and one all-zero map) on ImageNet val with several boxes per image: every metric
    is computed by hand from the rectangle's box (x1 = last column + 1, clipped at 223) and the +1 IoU."""
    samples = load_imagenet_val(demo_root / "ILSVRC")
    n = len(samples)
    assert any(len(s.boxes_xyxy) > 1 for s in samples), "the demo should hold a multi-box image"
    maps = np.zeros((n, 224, 224), np.float32)
    logits = np.zeros((n, NUM_CLASSES), np.float32)
    labels = [int(s.label) for s in samples]
    expected_iou, correct = [], []
    for i, s in enumerate(samples):
        gts = _hand_boxes_224(s.boxes_xyxy, _image_size(s.path))
        if i == 3:  # empty map -> the box [0, 0, 0, 0]
            pred = (0, 0, 0, 0)
        else:
            x0, y0, x1, y1 = gts[-1]  # the last GT box, shifted right by a known amount
            shift = 6 * i
            a, b = min(x0 + shift, 223), min(x1 + shift, 223)
            maps[i, y0 : y1 + 1, a : b + 1] = 1.0
            pred = (a, y0, min(b + 1, 223), min(y1 + 1, 223))
        expected_iou.append(max(_hand_iou(pred, g) for g in gts))
        pred_cls = labels[i] if i % 2 == 0 else (labels[i] + 1) % NUM_CLASSES
        logits[i, pred_cls] = 5.0
        correct.append(pred_cls == labels[i])
    _fake_scoremaps(monkeypatch, maps, logits, labels)
    res = evaluate.evaluate_wsol(
        evaluate.WSOLEvalConfig(
            backbone=ckpts["plain"],
            dataset="imagenet",
            data_root=demo_root / "ILSVRC",
            out=tmp_path,
            workers=0,
            batch_size=3,
            progress=False,
        )
    )
    iou = np.array(expected_iou)
    correct = np.array(correct)
    m = res.metrics
    assert m["maxboxacc"] == pytest.approx(100 * np.mean(iou >= 0.5))
    assert m["gt_known_loc"] == pytest.approx(100 * np.mean(iou >= 0.5))
    assert m["maxboxacc_v2"] == pytest.approx(np.mean([100 * np.mean(iou >= t) for t in (0.3, 0.5, 0.7)]))
    assert m["maxboxacc_v1_iou70"] == pytest.approx(100 * np.mean(iou >= 0.7))
    assert m["top1_cls"] == pytest.approx(100 * correct.mean())
    assert m["top1_loc"] == pytest.approx(100 * np.mean(correct & (iou >= 0.5)))
    assert "pxap" not in m  # ImageNet has no masks
    # each curve is flat (one mask at every threshold), the first threshold wins ties
    assert res.record["best_thresholds"]["maxboxacc"] == 0.0
    assert np.allclose(res.record["curves"]["boxacc_v1_iou30"], 100 * np.mean(iou >= 0.3))
    rows = read_csv(tmp_path / "per_image.csv")
    assert [r["image_id"] for r in rows] == [s.image_id for s in samples]
    np.testing.assert_allclose([float(r["iou"]) for r in rows], iou, atol=1e-6)
    assert [int(r["correct"]) for r in rows] == correct.astype(int).tolist()


def test_metadata_layout_gives_the_raw_layout_result(demo_root, ckpts, tmp_path, monkeypatch):
    samples = load_cub(demo_root / "CUB_200_2011", "test")
    write_wsol_metadata(samples, tmp_path / "metadata" / "CUB" / "test")
    rng = np.random.default_rng(0)
    maps = rng.random((len(samples), 224, 224)).astype(np.float32)
    maps = np.stack([cv2.GaussianBlur(m, (0, 0), 9) for m in maps])
    maps = (maps - maps.min(axis=(1, 2), keepdims=True)) / np.ptp(maps, axis=(1, 2), keepdims=True)
    logits = rng.normal(size=(len(samples), NUM_CLASSES)).astype(np.float32)
    labels = [int(s.label) for s in samples]
    results = []
    for kw in (
        {"data_root": demo_root / "CUB_200_2011"},
        {"data_root": demo_root / "CUB_200_2011", "metadata": tmp_path / "metadata" / "CUB"},
    ):
        _fake_scoremaps(monkeypatch, maps, logits, labels)
        out = tmp_path / ("meta" if "metadata" in kw else "raw")
        results.append(
            evaluate.evaluate_wsol(
                evaluate.WSOLEvalConfig(
                    backbone=ckpts["plain"], dataset="cub", out=out, workers=0, batch_size=5, progress=False, **kw
                )
            )
        )
    raw, meta = results
    assert meta.record["data_source"] == "metadata" and raw.record["data_source"] == "raw"
    for k, v in meta.metrics.items():
        assert raw.metrics[k] == v, k
    assert "pxap" in raw.metrics and "pxap" not in meta.metrics  # masks come with the raw layout only
    assert [r["image_id"] for r in raw.rows] == [r["image_id"] for r in meta.rows]
    assert [r["iou"] for r in raw.rows] == [r["iou"] for r in meta.rows]


# ------------------------------------------------------------------------------------------------ end to end
def test_end_to_end_cub_against_oracle(cub_run, demo_root, ckpts):
    out = cub_run
    for name in (
        "results.json",
        "per_image.csv",
        "cams.npz",
        "vis/curves.png",
        "vis/best_worst.png",
        "vis/pxap_pr.png",
    ):
        assert (out / name).is_file(), name
    assert len(list((out / "vis" / "images").glob("*.png"))) == 2
    for png in (out / "vis").rglob("*.png"):
        assert cv2.imread(str(png)) is not None
    assert not list(out.glob(".cams.rank*"))  # shards cleaned up

    rec = json.loads((out / "results.json").read_text())
    samples = load_cub(demo_root / "CUB_200_2011", "test")
    n = len(samples)
    rel_ids = [
        line.split()[1] for line in (demo_root / "CUB_200_2011" / "images.txt").read_text().split("\n") if line.strip()
    ]
    assert rec["kind"] == "wsol" and rec["dataset"] == "cub" and rec["split"] == "test"
    assert rec["checkpoint"]["sha256"] == sha256_file(ckpts["plain"])
    assert rec["checkpoint"]["arch"] == rec["arch"] == "resnet18" and rec["cam_method"] == "cam"
    assert rec["checkpoint"]["method"] == "baseline" and "torch" in rec["versions"]
    assert rec["num_images"] == n and rec["skipped_unreadable"]["count"] == 0

    with np.load(out / "cams.npz") as z:
        ids, cams = z["image_ids"], z["cams"]
    assert ids.tolist() == [s.image_id for s in samples] and set(ids.tolist()) <= set(rel_ids)
    assert cams.shape == (n, 224, 224) and cams.dtype == np.float32
    assert cams.min() >= 0 and cams.max() <= 1

    # the saved maps are the GT-class CAMs, computed here independently of cam.py
    model, _, _ = build_from_checkpoint(ckpts["plain"], wsol=True)
    with torch.inference_mode():
        x = torch.cat([_manual_input(s.path) for s in samples])
        feats = model.features(x).numpy()
        logits_all = model(x).numpy()
    for s, f, cam in zip(samples, feats, cams):
        raw = np.tensordot(model.fc.weight[s.label].detach().numpy(), f, axes=1).astype(np.float32)
        up = cv2.resize(raw, (224, 224), interpolation=cv2.INTER_CUBIC)
        np.testing.assert_allclose(cam, (up - up.min()) / (up.max() - up.min()), atol=2e-4)
    preds = np.argmax(logits_all, axis=1)
    labels = np.array([s.label for s in samples])

    # BoxAcc curves, MaxBoxAcc(V2), GT-known / top-1 loc: the per-threshold oracle on the saved maps
    gts = [_hand_boxes_224(s.boxes_xyxy, _image_size(s.path)) for s in samples]
    v1 = np.stack([max_iou_curve_reference(c.astype(np.float64), g, THR, False) for c, g in zip(cams, gts)])
    v2 = np.stack([max_iou_curve_reference(c.astype(np.float64), g, THR, True) for c, g in zip(cams, gts)])
    fixed = np.array([max_iou_curve_reference(c.astype(np.float64), g, [0.2], False)[0] for c, g in zip(cams, gts)])
    curves, m = rec["curves"], rec["metrics"]
    for iou in (30, 50, 70):
        np.testing.assert_array_equal(curves[f"boxacc_v1_iou{iou}"], (v1 >= iou / 100).sum(0) * 100.0 / n)
        np.testing.assert_array_equal(curves[f"boxacc_v2_iou{iou}"], (v2 >= iou / 100).sum(0) * 100.0 / n)
    acc50 = (v1 >= 0.5).sum(0) * 100.0 / n
    assert m["maxboxacc"] == acc50.max()
    assert rec["best_thresholds"]["maxboxacc"] == THR[int(acc50.argmax())]
    assert m["maxboxacc_v2"] == pytest.approx(np.mean([((v2 >= t).sum(0) * 100.0 / n).max() for t in (0.3, 0.5, 0.7)]))
    assert m["gt_known_loc"] == pytest.approx(100 * np.mean(fixed >= 0.5))
    assert m["top1_cls"] == pytest.approx(100 * np.mean(preds == labels))
    assert m["top1_loc"] == pytest.approx(100 * np.mean((preds == labels) & (fixed >= 0.5)))

    rows = read_csv(out / "per_image.csv")
    best = int(acc50.argmax())
    assert [r["image_id"] for r in rows] == [s.image_id for s in samples]
    np.testing.assert_allclose([float(r["iou"]) for r in rows], v1[:, best], atol=1e-6)
    assert [int(r["predicted"]) for r in rows] == preds.tolist()
    assert sum(int(r["hit"]) for r in rows) * 100.0 / n == m["maxboxacc"]

    # PxAP: precision / recall at "score >= edge" counted directly over the masks
    fg = [load_mask_224(s.mask_path) for s in samples]
    edges = np.concatenate([[2.0, 1.0], THR[::-1]])
    total_fg = sum(f.sum() for f in fg)
    prec, rec_ = [], []
    for e in edges:
        tp = sum(int((c.astype(np.float64)[f] >= e).sum()) for c, f in zip(cams, fg))
        fp = sum(int((c.astype(np.float64)[~f] >= e).sum()) for c, f in zip(cams, fg))
        prec.append(tp / (tp + fp) if tp + fp else np.nan)
        rec_.append(tp / total_fg)
    prec, rec_ = np.array(prec), np.array(rec_)
    ok = ~np.isnan(prec[1:])
    assert m["pxap"] == pytest.approx(100 * np.sum(prec[1:][ok] * np.diff(rec_)[ok]), rel=1e-9)


def test_masks_are_thresholded_at_127(tmp_path):
    mask = np.zeros((10, 20), np.uint8)
    mask[:, :10] = 127
    mask[:, 10:] = 128
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    out = load_mask_224(tmp_path / "m.png")
    assert out.shape == (224, 224) and out.dtype == bool
    assert not out[:, :111].any() and out[:, 113:].all()


@pytest.mark.slow
def test_second_checkpoint_and_determinism(demo_root, ckpts, tmp_path, cub_run):
    """A CutMix-PyTorch checkpoint, twice: identical numbers; its sha256 differs from the first checkpoint's."""
    main = TOOL.main()
    root = _tiny_cub(demo_root, tmp_path, test_ids=3)
    recs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        assert (
            main(
                [
                    "--backbone",
                    str(ckpts["cutmix"]),
                    "--dataset",
                    "cub",
                    "--data-root",
                    str(root),
                    "--out",
                    str(out),
                    "--batch-size",
                    "2",
                    "--workers",
                    "0",
                    "--no-progress",
                    "--seed",
                    "7",
                ]
            )
            == 0
        )
        recs.append(json.loads((out / "results.json").read_text()))
    assert recs[0]["metrics"] == recs[1]["metrics"] and recs[0]["curves"] == recs[1]["curves"]
    assert (tmp_path / "run0" / "per_image.csv").read_text() == (tmp_path / "run1" / "per_image.csv").read_text()
    first = json.loads((cub_run / "results.json").read_text())
    assert recs[0]["checkpoint"]["sha256"] != first["checkpoint"]["sha256"]
    assert recs[0]["checkpoint"]["method"] == "cutmix" and recs[0]["checkpoint_format"] == "cutmix-pytorch"
    assert recs[0]["num_images"] == 3


@pytest.mark.slow
def test_torchrun_two_processes_equal_single(demo_root, ckpts, cub_run, tmp_path):
    out = tmp_path / "dist"
    cub = demo_root / "CUB_200_2011"
    args = eval_args("--backbone", ckpts["plain"], "cub", cub, out, "--save-cams", *BATCH_8, "--device", "cpu")
    dist_rec, single = TOOL.check_torchrun_equals_single(args, out, cub_run)
    assert dist_rec["best_thresholds"] == single["best_thresholds"]
    with np.load(out / "cams.npz") as a, np.load(cub_run / "cams.npz") as b:
        assert a["image_ids"].tolist() == b["image_ids"].tolist()
        np.testing.assert_array_equal(a["cams"], b["cams"])
    assert not list(out.glob(".cams.rank*"))


# ------------------------------------------------------------------------------------------------ errors
def _tiny_cub(demo_root: Path, dst: Path, test_ids: int) -> Path:
    """A copy of the demo CUB whose test split holds only the first `test_ids` test images."""
    root = dst / "CUB_200_2011"
    shutil.copytree(demo_root / "CUB_200_2011", root)
    lines, kept = [], 0
    for line in (root / "train_test_split.txt").read_text().splitlines():
        iid, flag = line.split()
        if flag == "0":
            flag = "0" if kept < test_ids else "1"
            kept += flag == "0"
        lines.append(f"{iid} {flag}")
    (root / "train_test_split.txt").write_text("\n".join(lines) + "\n")
    return root


def test_error_missing_dataset_folder(ckpts, tmp_path):
    line = one_line_error(
        TOOL.run("--backbone", str(ckpts["plain"]), "--dataset", "cub", "--data-root", str(tmp_path / "nowhere"))
    )
    assert str(tmp_path / "nowhere") in line and "CUB_200_2011" in line and "--data-root" in line
    with pytest.raises(DatasetError, match=r"(?s)nowhere.*ILSVRC.*--data-root"):
        load_eval_data("imagenet", tmp_path / "nowhere", None)


def test_error_class_count_mismatch(ckpts, demo_root, tmp_path):
    line = one_line_error(
        TOOL.run(
            "--backbone",
            str(ckpts["five"]),
            "--dataset",
            "cub",
            "--data-root",
            str(demo_root / "CUB_200_2011"),
            "--out",
            str(tmp_path),
        )
    )
    assert "5" in line and "4 classes" in line and "train_cls.py" in line
    assert "fine-tune it on the dataset first" in line
    assert not (tmp_path / "results.json").exists()


def test_error_empty_split(ckpts, demo_root, tmp_path):
    root = _tiny_cub(demo_root, tmp_path, test_ids=0)
    line = one_line_error(TOOL.run("--backbone", str(ckpts["plain"]), "--dataset", "cub", "--data-root", str(root)))
    assert "test" in line and "no image" in line


def test_unreadable_image_fails_or_is_skipped(ckpts, demo_root, tmp_path):
    root = _tiny_cub(demo_root, tmp_path, test_ids=2)
    bad = load_cub(root, "test")[0]
    bad.path.write_bytes(b"this is not a jpeg")
    args = ["--backbone", str(ckpts["plain"]), "--dataset", "cub", "--data-root", str(root)]
    TOOL.check_unreadable_image(args, tmp_path, bad, kept=1)


def test_error_bad_options(ckpts, demo_root, capsys):
    base = ["--backbone", str(ckpts["plain"]), "--dataset", "cub", "--data-root", str(demo_root / "CUB_200_2011")]
    cases = (
        (["--iou", "30", "70"], "50"),
        (["--cam-curve-interval", "0"], "interval"),
        (["--split", "val"], "--metadata"),
        (["--device", "nonsense"], "--device"),
        (["--image-size", "8"], "--image-size"),
    )
    TOOL.check_option_errors(base, cases, capsys)
