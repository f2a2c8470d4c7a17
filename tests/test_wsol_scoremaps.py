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
from cutmix_transfer.errors import DatasetError
from cutmix_transfer.io import sha256_file
from cutmix_transfer.wsol.evaluate import WSOLEvalConfig, default_workers
from cutmix_transfer.wsol.scoremaps import load_saved_maps, prepare_map

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


# ------------------------------------------------------------------------------------------ the reader, in process
# load_saved_maps on hand-made files: every cams.npz error, the coverage checks, and the digests that key a run.
def _npz(path: Path, ids, cams, **extra) -> Path:
    np.savez(path, image_ids=np.asarray(ids), cams=np.asarray(cams), **extra)
    return path


def _maps(n: int, seed: int = 0, side: int = 224) -> np.ndarray:
    return np.random.default_rng(seed).random((n, side, side)).astype(np.float32)


IDS = ["a/1.jpg", "a/2.jpg", "b/3.jpg"]


def test_cams_npz_errors_name_the_file(tmp_path):
    maps = _maps(3)
    flat = _npz(tmp_path / "flat.npz", IDS, maps[:, 0])  # (N, W): one row per image, not a map
    with pytest.raises(
        DatasetError, match=r"flat\.npz: cams has shape \(3, 224\) for 3 image ids; expected \(N, H, W\)"
    ):
        load_saved_maps(flat, IDS)
    short = _npz(tmp_path / "short.npz", IDS, maps[:2])  # 2 maps for 3 ids
    with pytest.raises(DatasetError, match=r"short\.npz: cams has shape \(2, 224, 224\) for 3 image ids"):
        load_saved_maps(short, IDS)
    other = tmp_path / "other.npz"
    np.savez(other, ids=np.asarray(IDS), maps=maps)
    with pytest.raises(DatasetError, match=r"other\.npz: not a cams\.npz .*found \['ids', 'maps'\]"):
        load_saved_maps(other, IDS)
    no_cams = tmp_path / "no_cams.npz"
    np.savez(no_cams, image_ids=np.asarray(IDS))  # image_ids alone is not enough either
    with pytest.raises(DatasetError, match="not a cams.npz"):
        load_saved_maps(no_cams, IDS)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 this is not a zip archive")  # a zip's magic: np.load opens it as one
    with pytest.raises(DatasetError, match=r"junk\.npz: cannot read it as an \.npz .*--save-cams"):
        load_saved_maps(junk, IDS)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(_npz(tmp_path / "whole.npz", IDS, maps).read_bytes()[:5000])  # an interrupted copy
    with pytest.raises(DatasetError, match=r"truncated\.npz: cannot read it as an \.npz"):
        load_saved_maps(truncated, IDS)
    text = tmp_path / "maps.npz"
    text.write_text("image_ids,cams\n")
    with pytest.raises(DatasetError, match=r"maps\.npz: cannot read it as an \.npz"):
        load_saved_maps(text, IDS)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, image_ids=np.array(IDS, dtype=object), cams=maps)  # object arrays need pickle: refused
    with pytest.raises(DatasetError, match=r"pickled\.npz: cannot read it as an \.npz"):
        load_saved_maps(pickled, IDS)
    twice = _npz(tmp_path / "twice.npz", [IDS[0], IDS[1], IDS[0]], maps)
    with pytest.raises(DatasetError, match=r"twice\.npz: image id 'a/1\.jpg' appears twice in image_ids"):
        load_saved_maps(twice, IDS)
    with pytest.raises(DatasetError, match=r"score maps not found: .*nowhere\.npz"):
        load_saved_maps(tmp_path / "nowhere.npz", IDS)


def test_cams_npz_coverage_rows_and_source_checkpoint(tmp_path):
    maps = _maps(3, seed=1)
    order = [IDS[2], IDS[0], IDS[1]]  # stored in another order than the split's
    path = _npz(
        tmp_path / "cams.npz",
        order,
        maps,
        checkpoint_path=np.asarray("runs/r18.pth"),
        checkpoint_sha256=np.asarray("ab" * 32),
        arch=np.asarray("resnet18"),
    )
    saved = load_saved_maps(path, IDS)
    assert saved.layout == "cams.npz" and saved.path == path
    assert saved.source_checkpoint == {"path": "runs/r18.pth", "sha256": "ab" * 32, "arch": "resnet18"}
    for j, image_id in enumerate(order):  # each id reads its own row, whatever the split's order
        np.testing.assert_array_equal(saved.raw(image_id), maps[j])
        np.testing.assert_array_equal(saved.get(image_id), maps[j])
        assert saved.where(image_id) == f"{path}[{image_id}]"
    np.testing.assert_array_equal(saved.maps_for([IDS[1], IDS[2]]), maps[[2, 0]])
    assert saved.maps_for([]).shape == (0, 224, 224)
    assert load_saved_maps(_npz(tmp_path / "plain.npz", IDS, maps), IDS).source_checkpoint is None
    # a digest without the path and arch (another writer): those two are None, not an error
    bare = _npz(tmp_path / "bare.npz", IDS, maps, checkpoint_sha256=np.asarray("cd" * 32))
    assert load_saved_maps(bare, IDS).source_checkpoint == {"path": None, "sha256": "cd" * 32, "arch": None}
    with pytest.raises(DatasetError, match=r"cams\.npz: no score map for image id 'c/4\.jpg' \(1 missing in all\)"):
        load_saved_maps(path, [*IDS, "c/4.jpg"])
    with pytest.raises(DatasetError, match=r"cams\.npz: the map of image id 'b/3\.jpg' \(1 extra in all\) is not in"):
        load_saved_maps(path, IDS[:2])
    with pytest.raises(DatasetError, match=r"'a/1\.jpg' \(2 extra in all\)"):
        load_saved_maps(path, IDS[2:])  # the first extra id in the file's order after the split's


def _folder_digest_by_hand(root: Path) -> str:
    """sha256 over the sorted relative .npy paths, each followed by a NUL, its file's raw sha256 and a newline."""
    import hashlib

    h = hashlib.sha256()
    for rel in sorted(p.relative_to(root).as_posix() for p in root.rglob("*.npy")):
        h.update(rel.encode() + b"\0" + hashlib.sha256((root / rel).read_bytes()).digest() + b"\n")
    return h.hexdigest()


def test_digests_change_with_a_map_and_with_its_name(tmp_path):
    import hashlib

    maps = _maps(3, seed=2)
    path = _npz(tmp_path / "cams.npz", IDS, maps)
    first = load_saved_maps(path, IDS).sha256
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    changed = maps.copy()
    changed[1, 100, 100] = np.float32(changed[1, 100, 100] / 2)  # one pixel of one map
    _npz(path, IDS, changed)
    assert load_saved_maps(path, IDS).sha256 not in (first, None)

    root = _write_npy_root(IDS, maps, tmp_path / "root")
    saved = load_saved_maps(root, IDS)
    assert saved.layout == "scoremap_root" and saved.source_checkpoint is None
    assert saved.sha256 == _folder_digest_by_hand(root)
    before = saved.sha256
    np.save(root / (IDS[2] + ".npy"), changed[2] * np.float32(0.5))
    after = load_saved_maps(root, IDS).sha256
    assert after != before and after == _folder_digest_by_hand(root)
    # the same bytes under other names are other maps: the names enter the digest
    swapped = _write_npy_root(
        [IDS[1], IDS[0], IDS[2]], [maps[0], maps[1], changed[2] * np.float32(0.5)], tmp_path / "s"
    )
    assert load_saved_maps(swapped, IDS).sha256 not in (before, after)
    np.testing.assert_array_equal(load_saved_maps(swapped, IDS).get(IDS[1]), maps[0])


def test_npy_root_errors_name_the_map_file(tmp_path):
    maps = _maps(3, seed=3)
    root = _write_npy_root(IDS, maps, tmp_path / "root")
    (root / (IDS[1] + ".npy")).write_bytes(b"\x93NUMPY broken")
    saved = load_saved_maps(root, IDS)  # the listing is complete; the bad file fails when it is read
    with pytest.raises(DatasetError, match=rf"{root / (IDS[1] + '.npy')}: cannot read the score map of 'a/2\.jpg'"):
        saved.get(IDS[1])
    np.testing.assert_array_equal(saved.get(IDS[0]), maps[0])
    np.save(root / (IDS[1] + ".npy"), np.array([maps[1]], dtype=object), allow_pickle=True)  # needs pickle
    with pytest.raises(DatasetError, match=r"cannot read the score map of 'a/2\.jpg'"):
        saved.get(IDS[1])  # read without pickle, as any .npy of untrusted origin
    nan = maps[1].copy()
    nan[0, 0] = np.nan
    np.save(root / (IDS[1] + ".npy"), nan)
    with pytest.raises(DatasetError, match=rf"{root / (IDS[1] + '.npy')}: the score map of 'a/2\.jpg' contains NaN"):
        saved.get(IDS[1])
    assert saved.maps_for([]).dtype == np.float32
    (root / (IDS[2] + ".npy")).unlink()
    with pytest.raises(DatasetError, match=rf"{root / (IDS[2] + '.npy')}: no score map for image id 'b/3\.jpg'"):
        load_saved_maps(root, IDS)
    np.save(root / "b" / "4.jpg.npy", maps[2])
    np.save(root / (IDS[2] + ".npy"), maps[2])
    with pytest.raises(DatasetError, match=rf"{root / 'b' / '4.jpg.npy'}: the map of image id 'b/4\.jpg'"):
        load_saved_maps(root, IDS)


def test_prepare_map_rules():
    where = "maps.npz[x]"
    m = _maps(1, seed=4)[0]
    np.testing.assert_array_equal(prepare_map(m[None], "x", where), m)  # (1, H, W) is one map
    assert prepare_map(m.astype(np.float64), "x", where).dtype == np.float32
    np.testing.assert_array_equal(prepare_map(np.ones((224, 224), np.uint8), "x", where), np.ones((224, 224)))
    line = prepare_map(np.array([[0.0, 2.0, 1.0]]), "x", where)  # one row is still a 2-D map: resized
    assert line.shape == (224, 224) and line.min() == 0 and line.max() == pytest.approx(1, abs=1e-6)
    for bad, why in (
        (np.zeros((2, 224, 224)), r"shape \(2, 224, 224\)"),
        (np.zeros((224,)), r"shape \(224,\)"),
        (np.zeros((0, 5)), r"shape \(0, 5\)"),
        (np.array([["a", "b"]]), r"shape \(1, 2\) dtype <U1"),
    ):
        with pytest.raises(DatasetError, match=rf"maps\.npz\[x\]: the score map of 'x' has {why}"):
            prepare_map(bad, "x", where)
    nan = m.copy()
    nan[3, 4] = np.nan
    with pytest.raises(DatasetError, match=r"maps\.npz\[x\]: the score map of 'x' contains NaN"):
        prepare_map(nan, "x", where)
    for lo, hi in ((-0.25, 0.5), (0.0, 1.5)):
        with pytest.raises(DatasetError, match=rf"lies in \[{lo:g}, {hi:g}\], not \[0, 1\]"):
            prepare_map(np.linspace(lo, hi, 224 * 224).reshape(224, 224), "x", where)
    small = np.arange(12, dtype=np.float64).reshape(3, 4)
    small[0, 0] = np.inf
    with pytest.raises(DatasetError, match="contains inf"):
        prepare_map(small, "x", where)
    # another size: bicubic to 224 x 224, then min-max to [0, 1] (cv2 written out here)
    small = np.random.default_rng(5).random((7, 9)).astype(np.float32) * 4 - 2
    import cv2

    big = cv2.resize(small, (224, 224), interpolation=cv2.INTER_CUBIC)
    want = (big - big.min()) / (big.max() - big.min())
    got = prepare_map(small, "x", where)
    assert got.shape == (224, 224) and got.min() == 0 and got.max() == pytest.approx(1, abs=1e-6)
    np.testing.assert_allclose(got, want, atol=1e-6)
