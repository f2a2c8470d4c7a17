"""The report groups result records by checkpoint sha256 and lays them out like the paper's table."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cutmix_transfer.errors import ConfigError
from cutmix_transfer.report import PAPER_ROWS, build_rows, find_records, to_csv, write_report
from cutmix_transfer.results import checkpoint_info, guess_method, make_record, write_record

ROOT = Path(__file__).resolve().parents[1]


def _write(d: Path, kind, sha, path, metrics, dataset="cub", method=None, created=None, **extra):
    rec = make_record(kind, checkpoint_info(path, sha, "resnet18", method), dataset, "test", metrics, **extra)
    if created:
        rec["created"] = created
    write_record(d, rec)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    r = tmp_path / "runs"
    _write(r / "cls_base", "classification", "a" * 64, "ckpt/demo_baseline.pth", {"top1_err": 10.0, "top5_err": 1.0})
    _write(r / "cls_cm", "classification", "b" * 64, "ckpt/demo_cutmix.pth", {"top1_err": 12.5, "top5_err": 2.0})
    _write(r / "wsol_base", "wsol", "a" * 64, "ckpt/demo_baseline.pth", {"top1_loc": 40.0, "maxboxacc_v2": 50.0})
    # two records of the same column for one checkpoint: the newest wins
    _write(r / "wsol_cm_old", "wsol", "b" * 64, "ckpt/demo_cutmix.pth", {"top1_loc": 1.0, "maxboxacc_v2": 1.0},
           created="2020-01-01T00:00:00+00:00")
    _write(r / "wsol_cm", "wsol", "b" * 64, "ckpt/demo_cutmix.pth", {"top1_loc": 60.0, "maxboxacc_v2": 70.0},
           created="2030-01-01T00:00:00+00:00")
    _write(r / "det_cm", "detection", "b" * 64, "ckpt/demo_cutmix.pth", {"mAP": 33.3}, dataset="voc07",
           detector="faster_rcnn")
    _write(r / "cap_base", "captioning", "a" * 64, "ckpt/demo_baseline.pth",
           {"BLEU-1": 61.0, "BLEU-4": 20.0, "METEOR": 21.0, "CIDEr": 70.0}, dataset="coco")
    (r / "junk").mkdir()
    (r / "junk" / "results.json").write_text(json.dumps({"not": "a record"}))
    return r


def test_rows_group_by_sha_and_newest_wins(results: Path):
    rows = build_rows(find_records([results]))
    assert [r.method for r in rows] == ["baseline", "cutmix"]
    base, cm = rows
    assert base.values == {"top-1 err": 10.0, "CUB loc acc": 40.0, "CUB MaxBoxAccV2": 50.0, "BLEU-1": 61.0,
                           "BLEU-4": 20.0, "METEOR": 21.0, "CIDEr": 70.0}
    assert cm.values == {"top-1 err": 12.5, "CUB loc acc": 60.0, "CUB MaxBoxAccV2": 70.0,
                         "Faster R-CNN VOC07 mAP": 33.3}
    assert cm.sources["CUB loc acc"].endswith("wsol_cm/results.json")


def test_report_files_and_paper_rows(results: Path, tmp_path: Path):
    paths = write_report([results], tmp_path / "report", paper=True)
    md = paths["markdown"].read_text()
    assert "| cutmix | resnet18 | demo_cutmix.pth (bbbbbbbbbbbb) |" in md
    assert "paper: cutmix" in md and "54.81" in md
    table = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert len(table) == 2 + len(PAPER_ROWS)
    assert float(table[1]["Faster R-CNN VOC07 mAP"]) == pytest.approx(33.3)
    assert table[0]["Faster R-CNN VOC07 mAP"] == ""
    # the paper's CutMix row as DESIGN.md lists it
    cm = next(t for t in table if t["label"] == "paper: cutmix")
    assert float(cm["CUB loc acc"]) == 54.81 and float(cm["top-1 err"]) == 21.40
    assert "ImageNet MaxBoxAccV2" not in table[0]  # no measured record: column left out
    png = paths["figure"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_csv_round_trip_without_paper(results: Path):
    rows = build_rows(find_records([results]))
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [t["method"] for t in table] == ["baseline", "cutmix"]


def test_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        find_records([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no result records"):
        write_report([tmp_path / "empty"], tmp_path / "out")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{truncated")
    with pytest.raises(ConfigError, match="not a readable JSON"):
        find_records([bad])


def test_tool_one_line_error_and_success(results: Path, tmp_path: Path):
    tool = [sys.executable, str(ROOT / "tools" / "report.py")]
    bad = subprocess.run(tool + [str(tmp_path / "missing")], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error: ")
    ok = subprocess.run(tool + [str(results), "--out", str(tmp_path / "rep"), "--paper"],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "rep" / "report.png").exists()


@pytest.mark.parametrize("text,method", [
    ("work_dirs/demo_cutmix/epoch_7.pth", "cutmix"), ("resnet50_mixup.pth", "mixup"),
    ("CutMix-ResNet50.pth", "cutmix"), ("plain_r50.pth", "baseline"), ("r50.pth", None),
    ("cutout-16.pth", "cutout"),
])
def test_guess_method(text, method):
    assert guess_method(text) == method


def _robustness_curves(shift: float) -> dict:
    sides = [0, 112, 224]
    ratios = [0.0, 0.5, 1.0]
    return {"fgsm": {"eps": [8.0], "top1": [20.0 + shift]},
            "occlusion": {"hole_sizes": sides, "hole_sizes_px": sides, "center_top1_err": [10.0, 40.0 + shift, 100.0],
                          "boundary_top1_err": [100.0, 60.0 - shift, 10.0]},
            "inbetween": {"num_pairs": 5,
                          "mixup": {"ratios": ratios, "either": [90.0, 50.0 + shift, 90.0],
                                    "dominant": [90.0, 50.0, 90.0], "neither": [10.0, 50.0 - shift, 10.0]},
                          "cutmix": {"sides": sides, "sides_px": sides, "ratios": [0.0, 0.25, 1.0],
                                     "either": [90.0, 80.0, 90.0], "dominant": [90.0, 70.0, 90.0],
                                     "neither": [10.0, 20.0, 10.0]}}}


def test_robustness_column_paper_table11_and_overlaid_curves(results: Path, tmp_path: Path):
    from cutmix_transfer.report import PAPER_TABLE11_FGSM, robustness_series

    for name, sha, method, shift in (("rob_base", "a" * 64, "baseline", 0.0), ("rob_cm", "b" * 64, "cutmix", 5.0)):
        _write(results / name, "robustness", sha, f"ckpt/demo_{method}.pth",
               {"clean_top1": 90.0, "fgsm_top1_eps8": 20.0 + shift}, dataset="imagenet",
               curves=_robustness_curves(shift))
    # a CUB record: its own figure, and not the ImageNet column
    _write(results / "rob_cub", "robustness", "a" * 64, "ckpt/demo_baseline.pth", {"fgsm_top1_eps8": 77.0},
           dataset="cub", curves=_robustness_curves(1.0))
    records = find_records([results])
    rows = build_rows(records)
    assert [r.values.get("ImageNet FGSM top-1") for r in rows] == [20.0, 25.0]
    series = robustness_series(records)
    assert sorted(series) == ["cub", "imagenet"]
    assert [(label, method) for label, method, _ in series["imagenet"]] == [("baseline", "baseline"),
                                                                            ("cutmix", "cutmix")]
    assert series["imagenet"][1][2]["occlusion"]["center_top1_err"][1] == 45.0
    paths = write_report([results], tmp_path / "report", paper=True)
    table = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    paper = {t["label"]: float(t["ImageNet FGSM top-1"]) for t in table if t["reference"] == "1"}
    assert paper == {f"paper: {m}": v for m, v in PAPER_TABLE11_FGSM.items()}
    assert paper == {"paper: baseline": 8.2, "paper: mixup": 24.4, "paper: cutout": 11.5, "paper: cutmix": 31.0}
    for key in ("robustness_imagenet", "robustness_cub"):
        png = paths[key].read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_robustness_labels_of_two_checkpoints_of_one_method():
    from cutmix_transfer.report import robustness_series

    recs = []
    for sha in ("c" * 64, "d" * 64):
        rec = make_record("robustness", checkpoint_info(f"ckpt/{sha[:3]}_cutmix.pth", sha, "resnet18", "cutmix"),
                          "imagenet", "val", {"fgsm_top1_eps8": 1.0}, curves=_robustness_curves(0.0))
        recs.append((Path("x"), rec))
    labels = [label for label, _, _ in robustness_series(recs)["imagenet"]]
    assert labels == ["cutmix (cccccccc)", "cutmix (dddddddd)"]
