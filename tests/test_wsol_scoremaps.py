"""Scoring saved maps (tools/wsol_eval.py --scoremaps): the numbers equal the model path on the same maps, for
this project's cams.npz and for wsolevaluation's <scoremap_root>/<image_id>.npy layout; other sizes are resized and
normalised as the model path does; bad maps are one-line errors naming the id and the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, eval_args, load_tool_main, read_csv

from cutmix_transfer.backbones import build_model
from cutmix_transfer.cam import normalize_cams
from cutmix_transfer.io import sha256_file
from cutmix_transfer.wsol.evaluate import WSOLEvalConfig, default_workers

TOOL = REPO / "tools" / "wsol_eval.py"
CPU = ("--device", "cpu")
LOC_KEYS = ("gt_known_loc", "maxboxacc", "maxboxacc_v2", "pxap")


def _tool_main():
    return load_tool_main(TOOL, "wsol_eval_tool_sm")


def _write_npy_root(ids, maps, root: Path) -> Path:
    for image_id, m in zip(ids, maps):
        p = root / (image_id + ".npy")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, m)
    return root


@pytest.fixture(scope="module")
def model_run(demo_root, tmp_path_factory):
    """The model path with --save-cams on the demo CUB test split (a seeded 4-class ResNet-18)."""
    d = tmp_path_factory.mktemp("sm_model")
    torch.manual_seed(5)
    torch.save(build_model("resnet18", 4).state_dict(), d / "r18.pth")
    out = d / "out"
    args = eval_args("--backbone", d / "r18.pth", "cub", demo_root / "CUB_200_2011", out, "--save-cams", *CPU)
    assert _tool_main()([*args, "--batch-size", "4"]) == 0
    return d / "r18.pth", out


def _scoremaps_run(demo_root, maps_path: Path, out: Path, *extra: str) -> dict:
    assert _tool_main()(eval_args("--scoremaps", maps_path, "cub", demo_root / "CUB_200_2011", out, *CPU, *extra)) == 0
    return json.loads((out / "results.json").read_text())


def test_saved_maps_equal_the_model_path(model_run, demo_root, tmp_path):
    ckpt, out = model_run
    ref = json.loads((out / "results.json").read_text())
    with np.load(out / "cams.npz") as z:
        ids, maps = z["image_ids"].tolist(), z["cams"]
        assert str(z["checkpoint_sha256"][()]) == sha256_file(ckpt)
    npy_root = _write_npy_root(ids, maps, tmp_path / "scoremap_root")
    for maps_path in (out / "cams.npz", npy_root):
        rec = _scoremaps_run(demo_root, maps_path, tmp_path / f"run_{maps_path.name}")
        for k in LOC_KEYS:
            assert rec["metrics"][k] == ref["metrics"][k], k
        assert {k: v for k, v in ref["metrics"].items() if not k.startswith("top1")} == rec["metrics"]
        assert rec["curves"]["thresholds"] == ref["curves"]["thresholds"]
        for k, v in rec["curves"].items():
            assert v == ref["curves"][k], k
        assert rec["best_thresholds"] == ref["best_thresholds"]
        assert set(rec["not_reported"]) == {"top1_cls", "top1_loc", "top1_loc_at_best_threshold"}
        assert "checkpoint" in rec["not_reported"]["top1_cls"]
        rows, ref_rows = read_csv(tmp_path / f"run_{maps_path.name}" / "per_image.csv"), read_csv(out / "per_image.csv")
        assert [(r["image_id"], r["iou"], r["iou_fixed"], r["iou_v2"]) for r in rows] == [
            (r["image_id"], r["iou"], r["iou_fixed"], r["iou_v2"]) for r in ref_rows
        ]
        assert all(r["predicted"] == "" for r in rows)
    # keyed by the maps' sha256; cams.npz also names the checkpoint that made them
    rec_npz = json.loads((tmp_path / "run_cams.npz" / "results.json").read_text())
    assert rec_npz["checkpoint"]["sha256"] == sha256_file(out / "cams.npz")
    assert rec_npz["source_checkpoint"]["sha256"] == ref["checkpoint"]["sha256"] == sha256_file(ckpt)
    rec_npy = json.loads((tmp_path / "run_scoremap_root" / "results.json").read_text())
    assert rec_npy["checkpoint"]["sha256"] == rec_npy["scoremaps"]["sha256"] != rec_npz["checkpoint"]["sha256"]
    assert rec_npy["source_checkpoint"] is None


def test_other_sizes_are_resized_and_normalised_as_the_model_path(model_run, demo_root, tmp_path):
    _, out = model_run
    with np.load(out / "cams.npz") as z:
        ids = z["image_ids"].tolist()
    rng = np.random.default_rng(0)
    small = [rng.random((7, 9)).astype(np.float32) * 5 - 1 for _ in ids]  # any range: min-max follows the resize
    small[1][:] = 3.0  # a constant map becomes all zeros
    rec_small = _scoremaps_run(demo_root, _write_npy_root(ids, small, tmp_path / "small"), tmp_path / "o_small")
    big = normalize_cams(np.stack(small), (224, 224))  # independent of the reader: the model path's own step
    assert not big[1].any()
    rec_big = _scoremaps_run(demo_root, _write_npy_root(ids, big, tmp_path / "big"), tmp_path / "o_big")
    assert rec_small["metrics"] == rec_big["metrics"] and rec_small["curves"] == rec_big["curves"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_maps_are_one_line_errors(model_run, demo_root, tmp_path, capsys):
    _, out = model_run
    with np.load(out / "cams.npz") as z:
        ids, maps = z["image_ids"].tolist(), np.array(z["cams"])
    main = _tool_main()
    base = [
        "--dataset",
        "cub",
        "--data-root",
        str(demo_root / "CUB_200_2011"),
        "--workers",
        "0",
        "--no-progress",
        "--device",
        "cpu",
    ]

    def run(root: Path) -> str:
        assert main(["--scoremaps", str(root), "--out", str(tmp_path / "o"), *base]) == 2
        return _one_line(capsys)

    nan = maps.copy()
    nan[2, 5, 5] = np.nan
    line = run(_write_npy_root(ids, nan, tmp_path / "nan"))
    assert "NaN" in line and ids[2] in line and str(tmp_path / "nan") in line
    line = run(_write_npy_root(ids[:-1], maps[:-1], tmp_path / "missing"))
    assert "no score map" in line and ids[-1] in line
    extra = _write_npy_root(ids, maps, tmp_path / "extra")
    np.save(extra / "someone_else.jpg.npy", maps[0])
    line = run(extra)
    assert "someone_else.jpg" in line and "extra" in line
    shaped = _write_npy_root(ids, maps, tmp_path / "shape")
    np.save(shaped / (ids[3] + ".npy"), np.zeros((2, 3, 224, 224), np.float32))
    line = run(shaped)
    assert ids[3] in line and "shape" in line and str(shaped) in line
    assert main(["--scoremaps", str(out / "cams.npz"), "--backbone", "x.pth", "--out", str(tmp_path / "o"), *base]) == 2
    assert "not both" in _one_line(capsys)
    assert not (tmp_path / "o" / "results.json").exists()


def test_tool_prints_an_aligned_table_then_the_folder(model_run, demo_root, tmp_path, capsys):
    _, out = model_run
    capsys.readouterr()
    _scoremaps_run(demo_root, out / "cams.npz", tmp_path / "t")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"results: {tmp_path / 't'}"
    table = lines[-7:-1]
    assert [ln.split("  ")[0].strip() for ln in table] == [
        "top-1 cls",
        "top-1 loc",
        "GT-known loc",
        "MaxBoxAcc",
        "MaxBoxAccV2",
        "PxAP",
    ]
    assert len({len(ln) for ln in table}) == 1  # values right-aligned in one column
    rec = json.loads((tmp_path / "t" / "results.json").read_text())
    assert table[3].endswith(f"{rec['metrics']['maxboxacc']:.2f}") and table[0].endswith("n/a")


def test_default_workers_fit_the_machine():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 0 <= default_workers() <= min(4, cores) and WSOLEvalConfig().workers == default_workers()
