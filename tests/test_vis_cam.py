"""Figures: boxes land on the right pixels, the heatmap blend is what it says, and tools/vis_cam.py writes overlays
(and fails in one line on bad input)."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import REPO, load_tool_main, tool_env
from PIL import Image

from cutmix_transfer.backbones import build_model
from cutmix_transfer.checkpoints import PROJECT_META_KEY
from cutmix_transfer.datasets.common import IMAGENET_MEAN, IMAGENET_STD
from cutmix_transfer.errors import CheckpointError, ConfigError, DatasetError, UnsafeCheckpointError
from cutmix_transfer.wsol import vis_cam as vis_mod
from cutmix_transfer.wsol.inputs import load_image_224
from cutmix_transfer.wsol.model import compute_scoremaps
from cutmix_transfer.wsol.vis_cam import VisCamConfig, vis_cam
from cutmix_transfer.wsol.visualize import (
    GT_COLOR,
    PRED_COLOR,
    Case,
    colorize,
    compose_overlay,
    draw_box,
    save_boxacc_curves,
    save_case,
    save_grid,
)

TOOL = REPO / "tools" / "vis_cam.py"


def _band(canvas: np.ndarray, color) -> np.ndarray:
    return np.all(canvas == np.array(color, np.uint8), axis=-1)


@pytest.mark.parametrize("scale", [1, 3])
def test_draw_box_covers_exactly_the_border_pixels(scale):
    canvas = np.zeros((12 * scale, 16 * scale, 3), np.uint8)
    draw_box(canvas, (2, 3, 9, 7), (255, 0, 0), scale=scale, thickness=1, outline=False)
    hit = _band(canvas, (255, 0, 0))
    expect = np.zeros(hit.shape, bool)
    x0, y0, x1, y1 = 2 * scale, 3 * scale, 10 * scale - 1, 8 * scale - 1  # pixels 2..9 x 3..7, upscaled
    expect[y0, x0 : x1 + 1] = expect[y1, x0 : x1 + 1] = True
    expect[y0 : y1 + 1, x0] = expect[y0 : y1 + 1, x1] = True
    np.testing.assert_array_equal(hit, expect)


def test_draw_box_thick_band_stays_inside_and_clips():
    canvas = np.zeros((10, 10, 3), np.uint8)
    draw_box(canvas, (0, 0, 20, 4), (0, 255, 0), thickness=2, outline=False)  # x1 beyond the image: clipped
    hit = _band(canvas, (0, 255, 0))
    assert hit[0, :].all() and hit[1, 1:].all() and hit[4, :].all() and hit[:5, 9].all() and hit[:5, 8].all()
    assert not hit[5:].any() and not hit[2, 2:8].any()


def test_compose_overlay_blend_and_boxes():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    smap = rng.random((20, 30)).astype(np.float32)
    plain = compose_overlay(img, smap, None, None, scale=1, alpha=0.0)
    np.testing.assert_array_equal(plain, img)
    heat = compose_overlay(img, smap, None, None, scale=1, alpha=1.0)
    np.testing.assert_array_equal(heat, colorize(smap))
    out = compose_overlay(img, smap, np.array([[3, 4, 12, 15]]), np.array([[20, 2, 27, 9]]), scale=2)
    assert out.shape == (40, 60, 3)
    gt, pred = _band(out, GT_COLOR), _band(out, PRED_COLOR)
    assert gt[8, 6:26].all() and gt[8:32, 6].all() and gt[31, 6:26].all()  # outer edge of GT box 3..12 x 4..15
    assert pred[4, 40:56].all() and pred[4:20, 55].all()
    assert not gt[:8].any() and not gt[:, :6].any() and not gt[32:].any()


def test_colorize_range():
    from matplotlib import colormaps

    c = colorize(np.array([[0.0, 1.0, 2.0, -1.0]]))
    lo = (np.array(colormaps["inferno"](0.0)[:3]) * 255 + 0.5).astype(np.uint8)
    hi = (np.array(colormaps["inferno"](1.0)[:3]) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(c[0], [lo, hi, hi, lo])


def test_figures_write_pngs(tmp_path):
    rng = np.random.default_rng(1)
    cases = [
        Case(
            rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            rng.random((224, 224)).astype(np.float32),
            np.array([[10, 20, 100, 150]]),
            np.array([[0, 0, 223, 223]]),
            f"case {i}",
        )
        for i in range(3)
    ]
    save_case(tmp_path / "one.png", cases[0])
    save_grid(tmp_path / "grid.png", [("best", cases[:2]), ("worst", cases[2:])])
    thr = np.arange(0, 1, 0.01).tolist()
    record = {
        "curves": {
            "thresholds": thr,
            **{f"boxacc_v{v}_iou{i}": list(np.linspace(0, 50, 100)) for v in (1, 2) for i in (30, 50, 70)},
        },
        "protocol": {"iou_thresholds": [30, 50, 70], "fixed_threshold": 0.2},
        "metrics": {"maxboxacc": 50.0, "maxboxacc_v2": 50.0},
        "checkpoint": {"path": "x.pth"},
        "dataset": "cub",
        "split": "test",
        "num_images": 3,
    }
    save_boxacc_curves(tmp_path / "curves.png", record)
    for name in ("one.png", "grid.png", "curves.png"):
        img = cv2.imread(str(tmp_path / name))
        assert img is not None and img.shape[0] > 100 and img.shape[1] > 100


# ------------------------------------------------------------------------------------------------ the tool
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("viscam") / "mixup_r18.pth"
    torch.save(build_model("resnet18", 4).state_dict(), path)
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=240
    )


def test_vis_cam_tool_writes_overlays(ckpt, demo_root, tmp_path):
    images = sorted((demo_root / "ILSVRC" / "Data" / "CLS-LOC" / "val").glob("*.JPEG"))[:2]
    proc = _run(
        "--backbone",
        str(ckpt),
        *map(str, images),
        "--out",
        str(tmp_path / "vis"),
        "--class",
        "2",
        "--class-names",
        str(demo_root / "CUB_200_2011" / "classes.txt"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = [Path(p) for p in proc.stdout.split()]
    assert len(written) == 2 and all(p.parent == tmp_path / "vis" for p in written)
    for p, img in zip(written, images):
        assert img.stem in p.name
        png = cv2.imread(str(p))
        assert png is not None and png.shape[1] > png.shape[0]  # image and overlay side by side


def test_vis_cam_library_top1_and_errors(ckpt, demo_root, tmp_path):
    img = next((demo_root / "CUB_200_2011" / "images").rglob("*.jpg"))
    paths = vis_cam(VisCamConfig(backbone=ckpt, images=[img], out=tmp_path, device="cpu"))
    assert len(paths) == 1 and paths[0].path.is_file()
    with pytest.raises(ConfigError, match="--class 7.*0..3"):
        vis_cam(VisCamConfig(backbone=ckpt, images=[img], class_index=7, out=tmp_path, device="cpu"))
    with pytest.raises(DatasetError, match="missing.jpg"):
        vis_cam(VisCamConfig(backbone=ckpt, images=[tmp_path / "missing.jpg"], out=tmp_path, device="cpu"))
    small = vis_cam(VisCamConfig(backbone=ckpt, images=[img], out=tmp_path / "s96", device="cpu", input_size=96))
    assert len(small) == 1 and small[0].path.is_file()
    with pytest.raises(ConfigError, match="--image-size 8"):
        vis_cam(VisCamConfig(backbone=ckpt, images=[img], out=tmp_path, device="cpu", input_size=8))


def test_vis_cam_tool_error_is_one_line(ckpt, tmp_path, capsys):
    main = load_tool_main(TOOL, "vis_cam_tool")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    assert main(["--backbone", str(ckpt), str(bad), "--out", str(tmp_path), "--device", "cpu"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0]


def test_vis_cam_normalises_as_trained(ckpt, demo_root, tmp_path, monkeypatch):
    """--mean / --std, else the checkpoint meta's statistics, else ImageNet's (wsolevaluation's) reach the image
    loader; the network input is the hand-normalised resized image; one of the two flags alone is refused."""
    img = next((demo_root / "CUB_200_2011" / "images").rglob("*.jpg"))
    seen: list[tuple[tuple[float, ...], tuple[float, ...], torch.Tensor]] = []
    real = vis_mod.load_image_224

    def spy(path, *args, **kwargs):
        out = real(path, *args, **kwargs)
        seen.append((tuple(kwargs["mean"]), tuple(kwargs["std"]), out[0]))
        return out

    monkeypatch.setattr(vis_mod, "load_image_224", spy)
    net = build_model("resnet18", 4)
    meta_ckpt = tmp_path / "meta.pth"
    torch.save(
        {
            "state_dict": {f"backbone.{n}": v for n, v in net.state_dict().items()},
            "meta": {
                PROJECT_META_KEY: {
                    "arch": "resnet18",
                    "num_classes": 4,
                    "mean": [0.5, 0.4, 0.3],
                    "std": [0.2, 0.3, 0.4],
                }
            },
        },
        meta_ckpt,
    )
    base = dict(images=[img], device="cpu", input_size=64)
    vis_cam(VisCamConfig(backbone=ckpt, out=tmp_path / "a", **base))
    vis_cam(VisCamConfig(backbone=meta_ckpt, out=tmp_path / "b", **base))
    vis_cam(VisCamConfig(backbone=meta_ckpt, out=tmp_path / "c", mean=(0.1, 0.2, 0.3), std=(0.9, 0.8, 0.7), **base))
    assert [s[:2] for s in seen] == [
        (tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)),
        ((0.5, 0.4, 0.3), (0.2, 0.3, 0.4)),
        ((0.1, 0.2, 0.3), (0.9, 0.8, 0.7)),
    ]
    with Image.open(img) as im:
        pixels = torch.from_numpy(np.asarray(im.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float32))
    pixels = pixels.permute(2, 0, 1) / 255.0
    hand = (pixels - torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1)) / torch.tensor([0.9, 0.8, 0.7]).view(3, 1, 1)
    assert torch.allclose(seen[2][2], hand, atol=0.02)  # PIL's and torchvision's bilinear resize may differ by a level
    with pytest.raises(ConfigError, match="--mean and --std go together"):
        vis_cam(VisCamConfig(backbone=ckpt, out=tmp_path / "d", mean=(0.1, 0.2, 0.3), **base))


def test_vis_cam_draws_what_it_says(ckpt, demo_root, tmp_path, caplog):
    """Each figure's numbers against a computation written here: the probabilities of the checkpoint in the WSOL form
    (the standard form with --standard-form), the top-1 and the requested class, the top-5, the CAM resized to the
    image, the overlay (alpha 0: the image itself), the labels from a class-names file shorter than the head (with
    its warning), the --class and --alpha bounds, --arch and --trust-checkpoint reaching the loader, and a greyscale
    image drawn in RGB."""
    img = next((demo_root / "CUB_200_2011" / "images").rglob("*.jpg"))
    state = torch.load(ckpt)
    refs = {}
    for wsol in (True, False):
        refs[wsol] = build_model("resnet18", 4, wsol=wsol).eval()
        refs[wsol].load_state_dict(state)
    x, _, (w, h) = load_image_224(img, input_size=64)  # the checkpoint has no meta: ImageNet's statistics
    with torch.no_grad():
        probs = {k: torch.softmax(m(x[None]).double(), dim=1)[0].numpy() for k, m in refs.items()}
    order = np.argsort(-probs[True], kind="stable")
    with Image.open(img) as im:
        original = np.asarray(im.convert("RGB"))
    names = tmp_path / "names.txt"
    names.write_text("zero\none\n")  # 2 names for a 4-class head

    def run(name: str, **kw) -> vis_mod.CamView:
        (view,) = vis_cam(
            VisCamConfig(backbone=ckpt, images=[img], out=tmp_path / name, device="cpu", input_size=64, **kw)
        )
        assert view.path.is_file() and view.image == img and view.size_wh == (w, h)
        return view

    with caplog.at_level("WARNING", logger="cutmix_transfer.wsol.vis_cam"):
        top = run("top", class_names=names)
    assert "2 class names for a 4-class checkpoint" in caplog.text
    assert np.allclose(top.probs, probs[True], atol=1e-6) and top.top1 == top.cls == int(order[0])
    assert [c for c, _ in top.top5] == [int(c) for c in order[:4]]
    assert np.allclose([p for _, p in top.top5], probs[True][order[:4]], atol=1e-6)
    cam, _ = compute_scoremaps(refs[True], x[None], torch.tensor([top.cls]), "cam")
    smap = np.clip(cv2.resize(cam[0], (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    assert top.smap.shape == (h, w) and np.allclose(top.smap, smap, atol=1e-5)
    assert top.overlay.shape == (h, w, 3)
    assert np.array_equal(top.overlay, compose_overlay(original, top.smap, None, None, scale=1, alpha=0.5))
    labels = {0: "0 (zero)", 1: "1 (one)", 2: "2", 3: "3"}
    assert top.label == labels[top.cls]

    asked = run("asked", class_names=names, class_index=int(order[1]), alpha=1.0)
    assert asked.top1 == int(order[0]) and asked.cls == int(order[1]) and asked.label == labels[asked.cls]
    assert not np.array_equal(asked.smap, top.smap)
    for k in (0, 1, 2):
        view = run(f"class{k}", class_names=names, class_index=k, alpha=0.0)
        assert view.label == labels[k] and np.array_equal(view.overlay, original)  # alpha 0: the image alone
    caplog.clear()
    with caplog.at_level("WARNING", logger="cutmix_transfer.wsol.vis_cam"):
        assert run("last", class_index=3).label == "3"  # the last class; no names: the index alone
    assert "class names" not in caplog.text  # no names file, no count warning
    grad = run("gradcam", cam="gradcam", class_index=top.cls)
    gcam, _ = compute_scoremaps(refs[True], x[None], torch.tensor([top.cls]), "gradcam")
    gsmap = np.clip(cv2.resize(gcam[0], (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    assert np.allclose(grad.smap, gsmap, atol=1e-5) and not np.allclose(grad.smap, top.smap, atol=1e-3)
    with pytest.raises(ConfigError, match="--class 4"):
        run("over", class_index=4)
    for alpha in (-0.01, 1.01):
        with pytest.raises(ConfigError, match="--alpha"):
            run("alpha", alpha=alpha)

    standard = run("standard", wsol_form=False)
    assert np.allclose(standard.probs, probs[False], atol=1e-6) and not np.allclose(standard.probs, probs[True])
    with pytest.raises(CheckpointError):
        run("arch", arch="resnet50")
    odd = tmp_path / "odd.pth"
    torch.save({"state_dict": state, "meta": {"saved": datetime.datetime(2024, 1, 2)}}, odd)
    with pytest.raises(UnsafeCheckpointError, match="--trust-checkpoint"):
        vis_cam(VisCamConfig(backbone=odd, images=[img], out=tmp_path / "odd", device="cpu", input_size=64))
    trusted = vis_cam(
        VisCamConfig(
            backbone=odd, images=[img], out=tmp_path / "odd", device="cpu", input_size=64, trust_checkpoint=True
        )
    )
    assert np.allclose(trusted[0].probs, probs[True], atol=1e-6)
    grey = tmp_path / "grey.png"
    Image.open(img).convert("L").save(grey)
    (view,) = vis_cam(VisCamConfig(backbone=ckpt, images=[grey], out=tmp_path / "grey", device="cpu", input_size=64))
    assert view.overlay.shape == (h, w, 3)
