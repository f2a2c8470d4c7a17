"""OpenImages30k in wsolevaluation's layout: the reader (masks per image, the ignore file on the first line only,
none for custom data), the masks' > 0.5 foreground and ignore regions, PxAP against hand-computed cases, and the
demo layout scored end to end with tools/wsol_eval.py --scoremaps."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import REPO, eval_args, load_tool_main

from cutmix_transfer.datasets.demo import make_demo_data
from cutmix_transfer.datasets.openimages import load_openimages
from cutmix_transfer.errors import DatasetError
from cutmix_transfer.wsol.inputs import load_instance_masks_224

TOOL = REPO / "tools" / "wsol_eval.py"


def _score_openimages(maps_root: Path, data_root: Path, out: Path) -> dict:
    """tools/wsol_eval.py --scoremaps on an OpenImages layout, in-process on the CPU; its results.json."""
    main = load_tool_main(TOOL, "wsol_eval_tool_oi")
    assert main(eval_args("--scoremaps", maps_root, "openimages", data_root, out, "--device", "cpu")) == 0
    return json.loads((out / "results.json").read_text())


def _png(path: Path, arr: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr.astype(np.uint8))
    return path.name


def _hand_pxap(maps, fgs, ignores) -> float:
    """Area under the pixel PR curve, stepping through the maps' distinct values from the top: at each value v,
    precision and recall of "score >= v" over the scored pixels (ignore pixels that are not foreground left out)."""
    scores_fg = np.concatenate([m[f] for m, f in zip(maps, fgs)])
    scores_bg = np.concatenate([m[~f & ~ig] for m, f, ig in zip(maps, fgs, ignores)])
    ap, prev_recall = 0.0, 0.0
    for v in sorted(set(np.concatenate([scores_fg, scores_bg]).tolist()), reverse=True):
        tp, fp = int((scores_fg >= v).sum()), int((scores_bg >= v).sum())
        recall = tp / scores_fg.size
        ap += tp / (tp + fp) * (recall - prev_recall)
        prev_recall = recall
    return 100 * ap


def _layout(root: Path) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Three 224x224 test images by hand: two instance masks (one of them with value 1: still foreground) and an
    ignore box overlapping the foreground; one mask and an ignore file; one mask and no ignore file."""
    ids = ["test/c0/a.jpg", "test/c0/b.jpg", "test/c1/c.jpg"]
    for i in ids:
        _png(root / i.replace(".jpg", ".png"), np.full((224, 224, 3), 90))
        (root / i).write_bytes((root / i.replace(".jpg", ".png")).read_bytes())  # PIL reads by content
    fg, ign = [np.zeros((224, 224), bool) for _ in ids], [np.zeros((224, 224), bool) for _ in ids]

    def rect(rel: str, rows: slice, cols: slice, value: int = 255) -> np.ndarray:
        m = np.zeros((224, 224))
        m[rows, cols] = value
        _png(root / rel, m)
        return m > 0

    fg[0] |= rect("test/c0/a_m0.png", slice(20, 80), slice(30, 90))
    fg[0] |= rect("test/c0/a_m1.png", slice(100, 150), slice(100, 200), value=1)  # 1 > 0.5: foreground
    ign[0] = rect("test/ignore/a.png", slice(60, 120), slice(60, 130)) & ~fg[0]
    fg[1] |= rect("test/c0/b_m0.png", slice(50, 170), slice(40, 110))
    ign[1] = rect("test/ignore/b.png", slice(0, 40), slice(150, 224))
    fg[2] |= rect("test/c1/c_m0.png", slice(10, 60), slice(10, 200))
    meta = root / "metadata" / "OpenImages" / "test"
    meta.mkdir(parents=True)
    (meta / "image_ids.txt").write_text("".join(f"{i}\n" for i in ids))
    (meta / "class_labels.txt").write_text(f"{ids[0]},0\n{ids[1]},0\n{ids[2]},1\n")
    (meta / "localization.txt").write_text(
        f"{ids[0]},test/c0/a_m0.png,test/ignore/a.png\n{ids[1]},test/c0/b_m0.png,test/ignore/b.png\n"
        f"{ids[0]},test/c0/a_m1.png,\n{ids[2]},test/c1/c_m0.png,\n"
    )
    return ids, fg, ign


def test_reader_and_masks(tmp_path):
    ids, fg, ign = _layout(tmp_path)
    samples = load_openimages(tmp_path / "metadata" / "OpenImages" / "test", tmp_path)
    assert [s.image_id for s in samples] == ids and [s.label for s in samples] == [0, 0, 1]
    assert [len(s.mask_paths) for s in samples] == [2, 1, 1]
    assert samples[0].ignore_path == tmp_path / "test/ignore/a.png" and samples[2].ignore_path is None
    for s, f, g in zip(samples, fg, ign):
        got_fg, got_ignore = load_instance_masks_224(s.mask_paths, s.ignore_path)
        np.testing.assert_array_equal(got_fg, f)
        np.testing.assert_array_equal(got_ignore, g)
    # a smaller mask is resized with nearest neighbour: each source pixel becomes a 2x2 block
    small = np.zeros((112, 112))
    small[3:7, 5:9] = 200
    _png(tmp_path / "small.png", small)
    np.testing.assert_array_equal(
        load_instance_masks_224([tmp_path / "small.png"], None)[0], np.repeat(np.repeat(small > 0, 2, 0), 2, 1)
    )
    loc = tmp_path / "metadata" / "OpenImages" / "test" / "localization.txt"
    loc.write_text(loc.read_text() + f"{ids[1]},test/c0/b_m0.png,test/ignore/a.png\n")
    with pytest.raises(DatasetError, match="second ignore file"):
        load_openimages(loc.parent, tmp_path)
    loc.unlink()
    with pytest.raises(DatasetError, match="train has no masks"):
        load_openimages(loc.parent, tmp_path)


def test_pxap_hand_computed_with_ignore_regions(tmp_path):
    ids, fg, ign = _layout(tmp_path / "oi")
    rng = np.random.default_rng(3)
    levels = np.array([0.0, 0.105, 0.305, 0.555, 0.805, 1.0])  # mid-bin values: no float edge cases
    maps = [levels[rng.integers(0, len(levels), (224, 224))] for _ in ids]
    maps[0][20:80, 30:90] = 0.805  # the first instance scores high, part of the ignore box too
    maps[0][60:120, 60:130] = np.maximum(maps[0][60:120, 60:130], 0.555)
    root = tmp_path / "maps"
    for i, m in zip(ids, maps):
        (root / i).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / (i + ".npy"), m.astype(np.float32))
    rec = _score_openimages(root, tmp_path / "oi", tmp_path / "out")
    expected = _hand_pxap(maps, fg, ign)
    assert rec["metrics"]["pxap"] == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(_hand_pxap(maps, fg, [np.zeros_like(f) for f in fg]))  # ignore matters
    assert set(rec["metrics"]) == {"pxap"} and rec["num_mask_images"] == 3
    assert "no boxes" in rec["not_reported"]["maxboxacc"] and "checkpoint" in rec["not_reported"]["top1_cls"]


def test_demo_openimages_end_to_end(tmp_path):
    demo = make_demo_data(
        tmp_path / "demo",
        seed=0,
        image_size=48,
        per_class=1,
        num_classes=3,
        openimages_per_class=2,
        layouts=("openimages",),
        progress=False,
    )
    root = demo.root / "OpenImages"
    samples = load_openimages(root / "metadata" / "OpenImages" / "test", root)
    assert len(samples) == 6 and any(s.ignore_path for s in samples) and any(s.ignore_path is None for s in samples)
    assert not (root / "metadata" / "OpenImages" / "train" / "localization.txt").exists()
    rng = np.random.default_rng(0)
    maps = [cv2.GaussianBlur(rng.random((224, 224)), (0, 0), 8) for _ in samples]
    maps = [((m - m.min()) / (m.max() - m.min())).astype(np.float32) for m in maps]
    fgs, igs = [], []
    for s, m in zip(samples, maps):
        (tmp_path / "maps" / s.image_id).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "maps" / (s.image_id + ".npy"), m)
        f = np.zeros((224, 224), bool)
        for p in s.mask_paths:
            f |= cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (224, 224), interpolation=cv2.INTER_NEAREST) > 0
        g = np.zeros((224, 224), bool)
        if s.ignore_path is not None:
            g = (
                cv2.resize(
                    cv2.imread(str(s.ignore_path), cv2.IMREAD_GRAYSCALE), (224, 224), interpolation=cv2.INTER_NEAREST
                )
                > 0
            )
        fgs.append(f)
        igs.append(g & ~f)
    rec = _score_openimages(tmp_path / "maps", root, tmp_path / "out")
    # the maps take many values: count over the reference's bins (score >= each threshold) by hand
    thr = np.concatenate([[2.0, 1.0], np.arange(0, 1, 0.01)[::-1]])
    sf = np.concatenate([m.astype(np.float64)[f] for m, f in zip(maps, fgs)])
    sb = np.concatenate([m.astype(np.float64)[~f & ~g] for m, f, g in zip(maps, fgs, igs)])
    tp = np.array([(sf >= t).sum() for t in thr], float)
    fp = np.array([(sb >= t).sum() for t in thr], float)
    with np.errstate(invalid="ignore"):
        prec = tp / (tp + fp)
    rec_ = tp / sf.size
    ok = ~np.isnan(prec[1:])
    assert rec["metrics"]["pxap"] == pytest.approx(100 * np.sum(prec[1:][ok] * np.diff(rec_)[ok]), rel=1e-9)


def test_a_second_label_line_for_an_image_is_an_error_naming_both_lines(tmp_path):
    ids, _, _ = _layout(tmp_path)
    labels = tmp_path / "metadata" / "OpenImages" / "test" / "class_labels.txt"
    # the same label twice is refused too: a repeated line means the file was not written as wsolevaluation's
    for label in ("1", "0"):
        labels.write_text(f"{ids[0]},0\n{ids[1]},0\n{ids[2]},1\n{ids[0]},{label}\n")
        with pytest.raises(DatasetError) as err:
            load_openimages(labels.parent, tmp_path)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"{labels}:4: ")
        assert f"'{ids[0]}' already has a label on line 1" in msg
    labels.write_text(f"{ids[0]},0\n{ids[1]},0\n{ids[2]},1\n")  # one line each: read as before
    assert [s.label for s in load_openimages(labels.parent, tmp_path)] == [0, 0, 1]
