"""The report groups result records by checkpoint sha256 and lays them out like the paper's table."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import mmdet_voc_map

from cutmix_transfer.detection.evaluate import write_per_image_detections
from cutmix_transfer.detection.metric import VOCMetricPerClass
from cutmix_transfer.errors import ConfigError
from cutmix_transfer.report.bootstrap import VOCMapStatistic, bootstrap_interval, mean_statistic, paired_difference
from cutmix_transfer.report.paper import (
    PAPER_ROWS,
    PAPER_TABLE11_FGSM,
    PAPER_TABLE12_OOD,
    PAPER_TABLE_A2,
    PAPER_TABLE_A2_SETS,
)
from cutmix_transfer.report.per_image import per_image_statistic
from cutmix_transfer.report.replicates import SINGLE_RUN_NOTE
from cutmix_transfer.report.significance import format_p
from cutmix_transfer.report.table import (
    add_intervals,
    build_rows,
    find_records,
    paper_rows,
    robustness_notes,
    robustness_series,
    to_csv,
    to_markdown,
    write_report,
)
from cutmix_transfer.results import (
    checkpoint_info,
    data_identity,
    guess_method,
    images_digest,
    make_record,
    protocol_block,
    protocol_identity,
    write_record,
)

ROOT = Path(__file__).resolve().parents[1]
# (sha256, path) of the two demo checkpoints the fixture records name
BASE_CKPT = ("a" * 64, "ckpt/demo_baseline.pth")
CUTMIX_CKPT = ("b" * 64, "ckpt/demo_cutmix.pth")


def _write(d: Path, kind, sha, path, metrics, dataset="cub", method=None, created=None, **extra):
    rec = make_record(kind, checkpoint_info(path, sha, "resnet18", method), dataset, "test", metrics, **extra)
    if created:
        rec["created"] = created
    write_record(d, rec)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    r = tmp_path / "runs"
    _write(r / "cls_base", "classification", *BASE_CKPT, {"top1_err": 10.0, "top5_err": 1.0})
    _write(r / "cls_cm", "classification", *CUTMIX_CKPT, {"top1_err": 12.5, "top5_err": 2.0})
    _write(r / "wsol_base", "wsol", *BASE_CKPT, {"top1_loc": 40.0, "maxboxacc_v2": 50.0})
    # two records of the same column for one checkpoint: the newest wins
    old = "2020-01-01T00:00:00+00:00"
    _write(r / "wsol_cm_old", "wsol", *CUTMIX_CKPT, {"top1_loc": 1.0, "maxboxacc_v2": 1.0}, created=old)
    new = "2030-01-01T00:00:00+00:00"
    _write(r / "wsol_cm", "wsol", *CUTMIX_CKPT, {"top1_loc": 60.0, "maxboxacc_v2": 70.0}, created=new)
    _write(r / "det_cm", "detection", *CUTMIX_CKPT, {"mAP": 33.3}, dataset="voc07", detector="faster_rcnn")
    caption = {"BLEU-1": 61.0, "BLEU-4": 20.0, "METEOR": 21.0, "CIDEr": 70.0}
    _write(r / "cap_base", "captioning", *BASE_CKPT, caption, dataset="coco")
    (r / "junk").mkdir()
    (r / "junk" / "results.json").write_text(json.dumps({"not": "a record"}))
    return r


def test_rows_group_by_sha_and_newest_wins(results: Path):
    rows = build_rows(find_records([results]))
    assert [r.method for r in rows] == ["baseline", "cutmix"]
    base, cm = rows
    assert base.values == {
        "top-1 err": 10.0,
        "CUB loc acc": 40.0,
        "CUB MaxBoxAccV2": 50.0,
        "BLEU-1": 61.0,
        "BLEU-4": 20.0,
        "METEOR": 21.0,
        "CIDEr": 70.0,
    }
    assert cm.values == {
        "top-1 err": 12.5,
        "CUB loc acc": 60.0,
        "CUB MaxBoxAccV2": 70.0,
        "Faster R-CNN VOC07 mAP": 33.3,
    }
    assert cm.sources["CUB loc acc"].endswith("wsol_cm/results.json")


def test_report_files_and_paper_rows(results: Path, tmp_path: Path):
    paths = write_report([results], tmp_path / "report", paper=True)
    md = paths["markdown"].read_text()
    assert "| cutmix | resnet18 | demo_cutmix.pth (bbbbbbbbbbbb) |" in md
    assert "paper: cutmix" in md and "54.81" in md
    table = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert len(table) == 2 + len(PAPER_ROWS) + len(PAPER_TABLE12_OOD)
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
    ok = subprocess.run(
        tool + [str(results), "--out", str(tmp_path / "rep"), "--paper"], capture_output=True, text=True, cwd=ROOT
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "rep" / "report.png").exists()


@pytest.mark.parametrize(
    "text,method",
    [
        ("work_dirs/demo_cutmix/epoch_7.pth", "cutmix"),
        ("resnet50_mixup.pth", "mixup"),
        ("CutMix-ResNet50.pth", "cutmix"),
        ("plain_r50.pth", "baseline"),
        ("r50.pth", None),
        ("cutout-16.pth", "cutout"),
    ],
)
def test_guess_method(text, method):
    assert guess_method(text) == method


def _robustness_curves(shift: float) -> dict:
    sides = [0, 112, 224]
    ratios = [0.0, 0.5, 1.0]
    return {
        "fgsm": {"eps": [8.0], "top1": [20.0 + shift]},
        "occlusion": {
            "hole_sizes": sides,
            "hole_sizes_px": sides,
            "center_top1_err": [10.0, 40.0 + shift, 100.0],
            "boundary_top1_err": [100.0, 60.0 - shift, 10.0],
        },
        "inbetween": {
            "num_pairs": 5,
            "mixup": {
                "ratios": ratios,
                "either": [90.0, 50.0 + shift, 90.0],
                "dominant": [90.0, 50.0, 90.0],
                "neither": [10.0, 50.0 - shift, 10.0],
            },
            "cutmix": {
                "sides": sides,
                "sides_px": sides,
                "ratios": [0.0, 0.25, 1.0],
                "either": [90.0, 80.0, 90.0],
                "dominant": [90.0, 70.0, 90.0],
                "neither": [10.0, 20.0, 10.0],
            },
        },
    }


def test_robustness_column_paper_table11_and_overlaid_curves(results: Path, tmp_path: Path):

    for name, sha, method, shift in (("rob_base", "a" * 64, "baseline", 0.0), ("rob_cm", "b" * 64, "cutmix", 5.0)):
        _write(
            results / name,
            "robustness",
            sha,
            f"ckpt/demo_{method}.pth",
            {"clean_top1": 90.0, "fgsm_top1_eps8": 20.0 + shift},
            dataset="imagenet",
            curves=_robustness_curves(shift),
        )
    # a CUB record: its own figure, and not the ImageNet column
    _write(
        results / "rob_cub",
        "robustness",
        "a" * 64,
        "ckpt/demo_baseline.pth",
        {"fgsm_top1_eps8": 77.0},
        dataset="cub",
        curves=_robustness_curves(1.0),
    )
    records = find_records([results])
    rows = build_rows(records)
    assert [r.values.get("ImageNet FGSM top-1") for r in rows] == [20.0, 25.0]
    series = robustness_series(records)
    assert sorted(series) == ["cub", "imagenet"]
    assert [(label, method) for label, method, _ in series["imagenet"]] == [
        ("baseline", "baseline"),
        ("cutmix", "cutmix"),
    ]
    assert series["imagenet"][1][2]["occlusion"]["center_top1_err"][1] == 45.0
    paths = write_report([results], tmp_path / "report", paper=True)
    table = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    paper = {
        t["label"]: float(t["ImageNet FGSM top-1"]) for t in table if t["reference"] == "1" and t["arch"] == "resnet50"
    }  # not the PyramidNet / CIFAR-100 rows
    assert paper == {f"paper: {m}": v for m, v in PAPER_TABLE11_FGSM.items()}
    assert paper == {"paper: baseline": 8.2, "paper: mixup": 24.4, "paper: cutout": 11.5, "paper: cutmix": 31.0}
    for key in ("robustness_imagenet", "robustness_cub"):
        png = paths[key].read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_robustness_labels_of_two_checkpoints_of_one_method():

    recs = []
    for sha in ("c" * 64, "d" * 64):
        rec = make_record(
            "robustness",
            checkpoint_info(f"ckpt/{sha[:3]}_cutmix.pth", sha, "resnet18", "cutmix"),
            "imagenet",
            "val",
            {"fgsm_top1_eps8": 1.0},
            curves=_robustness_curves(0.0),
        )
        recs.append((Path("x"), rec))
    labels = [label for label, _, _ in robustness_series(recs)["imagenet"]]
    assert labels == ["cutmix (cccccccc)", "cutmix (dddddddd)"]


# ---- cell identity (issue 18): same checkpoint on other data is another cell; a rerun is one cell and a note ----
def _rec(kind, sha, method, metrics, data=None, created=None, dataset="voc2007", **extra):
    rec = make_record(
        kind,
        checkpoint_info(f"ckpt/demo_{method}.pth", sha, "resnet18", method),
        dataset,
        "test",
        metrics,
        **({"data": data} if data else {}),
        **extra,
    )
    if created:
        rec["created"] = created
    return rec


def test_same_checkpoint_on_two_datasets_gives_two_cells(tmp_path: Path):

    demo = data_identity("voc2007", "test", tmp_path / "demo/VOCdevkit", ["000001", "000002"])
    other = data_identity("voc2007", "test", tmp_path / "small/VOCdevkit", ["009001", "009002", "009003"])
    _write_rec = lambda d, rec: write_record(tmp_path / d, rec)  # noqa: E731
    _write_rec(
        "demo/det",
        _rec("detection", "a" * 64, "baseline", {"mAP": 34.24}, demo, "2026-01-01T00:00:00", detector="faster_rcnn"),
    )
    _write_rec(
        "other/det",
        _rec("detection", "a" * 64, "baseline", {"mAP": 0.0}, other, "2026-02-01T00:00:00", detector="faster_rcnn"),
    )
    _write_rec(
        "demo/det_cm",
        _rec("detection", "b" * 64, "cutmix", {"mAP": 13.66}, demo, "2026-01-01T00:00:01", detector="faster_rcnn"),
    )
    notes: list[str] = []
    rows = build_rows(find_records([tmp_path]), notes, strict=True)  # different data is not a rerun
    base, cm = rows
    assert base.values == {"Faster R-CNN VOC07 mAP [data 1]": 34.24, "Faster R-CNN VOC07 mAP [data 2]": 0.0}
    assert cm.values == {"Faster R-CNN VOC07 mAP [data 1]": 13.66}
    assert len(notes) == 1 and "data 1 = voc2007 test" in notes[0] and "2 images" in notes[0]
    assert "data 2 = voc2007 test" in notes[0] and str(tmp_path / "small/VOCdevkit") in notes[0]
    md = write_report([tmp_path], tmp_path / "rep", paper=True, bootstrap=0)["markdown"].read_text()
    assert "| baseline | resnet18 | demo_baseline.pth (aaaaaaaaaaaa) | 34.24 | 0.00 |" in md
    assert "| paper: cutmix | resnet50 | paper | 76.70 | 76.70 |" in md  # the paper's number under each variant


def test_rerun_is_one_cell_with_a_note_and_strict_refuses(tmp_path: Path):

    cub = data_identity("cub", "test", tmp_path / "CUB", ["1", "2", "3"])
    for folder, metrics, created in (
        ("old", {"top1_loc": 1.0, "maxboxacc_v2": 2.0}, "2026-01-01T00:00:00"),
        ("new", {"top1_loc": 40.0, "maxboxacc_v2": 50.0}, "2026-03-01T00:00:00"),
    ):
        write_record(tmp_path / folder, _rec("wsol", "a" * 64, "baseline", metrics, cub, created, dataset="cub"))
    notes: list[str] = []
    (row,) = build_rows(find_records([tmp_path]), notes)
    assert row.values == {"CUB loc acc": 40.0, "CUB MaxBoxAccV2": 50.0}
    assert len(notes) == 1  # one note for the pair of files, not one per column
    assert str(tmp_path / "new/results.json") in notes[0] and str(tmp_path / "old/results.json") in notes[0]
    assert notes[0].index("new/results.json") < notes[0].index("old/results.json")  # the shown one first
    md = write_report([tmp_path], tmp_path / "rep", bootstrap=0)["markdown"].read_text()
    assert "Rerun: 2 records of the same cell" in md
    with pytest.raises(ConfigError, match="--strict: Rerun"):
        write_report([tmp_path], tmp_path / "rep2", strict=True, bootstrap=0)
    tool = [sys.executable, str(ROOT / "tools" / "report.py"), str(tmp_path / "old"), str(tmp_path / "new")]
    bad = subprocess.run(tool + ["--strict", "--out", str(tmp_path / "rep3")], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --strict") and bad.stderr.count("\n") == 1


def test_record_without_data_identity_is_its_own_value(tmp_path: Path):

    write_record(
        tmp_path / "legacy",
        _rec(
            "classification", "a" * 64, "baseline", {"top1_err": 9.0}, None, "2026-01-01T00:00:00", dataset="imagenet"
        ),
    )
    write_record(
        tmp_path / "new",
        _rec(
            "classification",
            "a" * 64,
            "baseline",
            {"top1_err": 8.0},
            data_identity("imagenet", "test", tmp_path, ["x"]),
            "2026-02-01T00:00:00",
            dataset="imagenet",
        ),
    )
    notes: list[str] = []
    (row,) = build_rows(find_records([tmp_path]), notes)
    assert row.values == {"top-1 err [data 1]": 9.0, "top-1 err [data 2]": 8.0}
    assert any("predate the data identity" in n and "legacy/results.json" in n for n in notes)
    assert any("data 1 = imagenet test, which images not recorded" in n for n in notes)


def test_records_without_data_identity_on_two_roots_stay_apart(tmp_path: Path):
    """The issue's case with records written before the data block: the tools' `data_root` tells them apart."""
    for d, root, value, created in (
        ("demo", "data/demo/VOCdevkit", 34.24, "2026-01-01T00:00:00"),
        ("other", "data/small/VOCdevkit", 0.0, "2026-02-01T00:00:00"),
    ):
        write_record(
            tmp_path / d,
            _rec(
                "detection", "a" * 64, "baseline", {"mAP": value}, None, created, detector="faster_rcnn", data_root=root
            ),
        )
    notes: list[str] = []
    (row,) = build_rows(find_records([tmp_path]), notes, strict=True)
    assert row.values == {"Faster R-CNN VOC07 mAP [data 1]": 34.24, "Faster R-CNN VOC07 mAP [data 2]": 0.0}
    assert any("data 1 = voc2007 test, data/demo/VOCdevkit, which images not recorded" in n for n in notes)


def test_data_identity_digest_ignores_order_and_resolves_root(tmp_path: Path):

    a = data_identity("cub", "test", tmp_path / "x" / "..", ["b", "a"])
    assert a == data_identity("cub", "test", tmp_path, ["a", "b"])
    assert a["num_images"] == 2 and a["root"] == str(tmp_path.resolve())
    import hashlib

    assert a["images_sha256"] == images_digest(["a", "b"]) == hashlib.sha256(b"a\nb").hexdigest()


# ---- intervals and paired differences ----
def _robustness_pair(tmp_path: Path, n: int = 40):

    rng = np.random.default_rng(0)
    ids = [f"img{i:03d}" for i in range(n)]
    out = {}
    for sha, method, p in (("a" * 64, "baseline", 0.4), ("b" * 64, "cutmix", 0.6)):
        correct = (rng.random(n) < p).astype(int)
        folder = tmp_path / f"rob_{method}"
        write_record(
            folder,
            _rec(
                "robustness",
                sha,
                method,
                {"fgsm_top1_eps8": 100 * correct.mean()},
                data_identity("imagenet", "val", tmp_path, ids),
                dataset="imagenet",
            ),
        )
        lines = ["index,image_id,fgsm_correct_eps8"] + [f"{i},{ids[i]},{c}" for i, c in enumerate(correct)]
        # rows in another order than sorted ids: the report aligns images by id
        (folder / "per_image.csv").write_text("\n".join([lines[0]] + lines[1:][::-1]) + "\n")
        out[method] = correct
    return out


def test_intervals_and_paired_difference_equal_direct_bootstrap(tmp_path: Path):

    correct = _robustness_pair(tmp_path)
    paths = write_report([tmp_path], tmp_path / "rep", bootstrap=300, seed=7)
    md = paths["markdown"].read_text()
    for method in ("baseline", "cutmix"):
        ci = bootstrap_interval(mean_statistic(100.0 * correct[method]), 40, 300, seed=7)
        assert f"{ci.value:.2f} [{ci.low:.2f}, {ci.high:.2f}]" in md
    d = paired_difference(
        mean_statistic(100.0 * correct["cutmix"]), mean_statistic(100.0 * correct["baseline"]), 40, 300, seed=7
    )
    # the test is exact McNemar on the discordant images, by hand: 2 P(X <= min(b, c)), X ~ Bin(b + c, 1/2)
    b = int(np.sum((correct["cutmix"] == 1) & (correct["baseline"] == 0)))
    c = int(np.sum((correct["cutmix"] == 0) & (correct["baseline"] == 1)))
    p = min(1.0, 2 * sum(math.comb(b + c, i) for i in range(min(b, c) + 1)) / 2 ** (b + c))
    assert (
        f"ImageNet FGSM top-1, cutmix − baseline: {d.value:+.2f} [{d.low:+.2f}, {d.high:+.2f}], "
        f"p = {format_p(p)} (exact McNemar, {b} vs {c} discordant images"
    ) in md
    # one test in the family: Holm leaves it as it is; one run each: covers the images only
    assert f"Holm-adjusted p = {format_p(p)}; 1 run each: the interval and the test cover the test images only" in md
    assert "p <" not in md and "(1 run: test images only)" in md and SINGLE_RUN_NOTE in md
    table = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert float(table[1]["ImageNet FGSM top-1 ci95_low"]) == pytest.approx(
        bootstrap_interval(mean_statistic(100.0 * correct["cutmix"]), 40, 300, seed=7).low, abs=1e-4
    )
    # 0 turns the bootstrap off; the same seed gives the same report
    assert "[" not in write_report([tmp_path], tmp_path / "rep0", bootstrap=0)["markdown"].read_text().split("\n")[2]
    assert write_report([tmp_path], tmp_path / "rep1", bootstrap=300, seed=7)["markdown"].read_text() == md


def test_per_image_results_that_disagree_with_the_record_get_no_interval(tmp_path: Path):
    _robustness_pair(tmp_path)
    (tmp_path / "rob_cutmix" / "per_image.csv").write_text("index,image_id,fgsm_correct_eps8\n0,img000,1\n")
    md = write_report([tmp_path], tmp_path / "rep", bootstrap=100)["markdown"].read_text()
    assert "No interval for cutmix ImageNet FGSM top-1: its per-image results give 100.00" in md
    assert "cutmix − baseline" not in md


def test_detection_interval_from_per_image_detections_matches_eval_map(tmp_path: Path):
    from tests.test_bootstrap import _det_case

    dets, gts = _det_case(3, n=12)
    for i, g in enumerate(gts):
        g["img_id"] = f"{i:06d}"
    full = mmdet_voc_map(dets, gts)
    folder = tmp_path / "det"
    write_record(folder, _rec("detection", "a" * 64, "baseline", {"mAP": 100 * full}, detector="faster_rcnn"))
    write_per_image_detections(folder / "per_image_detections.npz", list(zip(gts, dets)), "11points", 0.5)
    (row,) = build_rows(find_records([tmp_path]))

    add_intervals([row], find_records([tmp_path]), resamples=50, seed=1)
    ci = row.intervals["Faster R-CNN VOC07 mAP"]
    assert ci.value == pytest.approx(100 * full, abs=1e-4)
    # bias-corrected (BC) by hand on the same draws: z0 = Phi^-1(share below the estimate, ties half), ends at the
    # resamples' quantiles Phi(2 z0 -/+ 1.96); the bias is the resamples' mean minus the estimate
    from scipy.stats import norm

    values = VOCMapStatistic(dets, gts)(np.random.default_rng(1).multinomial(12, np.full(12, 1 / 12), size=50))
    v = ci.value  # = mmdet's mAP to 1e-4 (above); the statistic's own value, as the resamples are
    share = (np.sum(values < v - 1e-6) + 0.5 * np.sum(np.abs(values - v) <= 1e-6)) / 50
    z0 = norm.ppf(min(max(share, 0.01), 0.99))
    lo, hi = np.quantile(values, [norm.cdf(2 * z0 - 1.959964), norm.cdf(2 * z0 + 1.959964)])
    assert ci.method == "BC" and (ci.low, ci.high) == pytest.approx((lo, hi), abs=1e-6)
    assert ci.bias == pytest.approx(values.mean() - v, abs=1e-6)
    md = to_markdown([row])
    assert f"{v:.2f} [{lo:.2f}, {hi:.2f}] (BC, bias {values.mean() - v:+.2f}; 1 run: test images only)" in md


def test_ood_columns_and_table12_rows(results: Path, tmp_path: Path):
    """kind 'ood' records fill the mean TNR@TPR95 / AUROC / detection accuracy columns; --paper adds Table 12 as
    PyramidNet rows."""
    for sha, name, tnr, auroc in (("a", "demo_baseline", 40.0, 80.5), ("b", "demo_cutmix", 70.25, 93.0)):
        _write(
            results / f"ood_{name}",
            "ood",
            sha * 64,
            f"ckpt/{name}.pth",
            {"tnr_at_tpr95": tnr, "auroc": auroc, "detection_acc": 1.0, "top1_err": 3.0},
            dataset="cifar100",
            detector="msp",
        )
    rows = build_rows(find_records([results]))
    assert [(r.values["OOD TNR@TPR95 (mean)"], r.values["OOD AUROC (mean)"]) for r in rows] == [
        (40.0, 80.5),
        (70.25, 93.0),
    ]
    assert rows[0].values["top-1 err"] == 10.0  # the ood record's own top1_err is not a classification cell
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert float(table[1]["OOD AUROC (mean)"]) == 93.0
    paths = write_report([results], tmp_path / "report", paper=True)
    table = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    pyr = [t for t in table if t["label"].startswith("paper (PyramidNet-200, CIFAR-100)")]
    assert [t["method"] for t in pyr] == ["baseline", "mixup", "cutout", "cutmix"]
    assert all(t["arch"] == "pyramidnet200_a240_bottleneck" for t in pyr)
    got = [(float(t["OOD TNR@TPR95 (mean)"]), float(t["OOD AUROC (mean)"])) for t in pyr]
    assert got == [(26.3, 87.3), (11.8, 49.3), (18.8, 68.7), (69.0, 94.4)]  # Table 12
    assert [float(t["OOD detection acc (mean)"]) for t in pyr] == [82.0, 60.9, 71.3, 89.1]
    assert [r.values["OOD detection acc (mean)"] for r in rows] == [1.0, 1.0]
    assert all("CIFAR-100 top-1 err" not in t for t in pyr)  # shown only beside a measured CIFAR classifier
    resnet = [t for t in table if t["label"].startswith("paper: ")]
    assert len(resnet) == len(PAPER_ROWS) and all(
        t["arch"] == "resnet50" and t["OOD AUROC (mean)"] == "" for t in resnet
    )


def test_voc_metric_per_image_output_reproduces_its_map(demo_root: Path, tmp_path: Path):
    """VOCMetricPerClass on the demo VOC07 test (difficult boxes ignored) -> per_image_detections.npz -> the
    report's statistic gives mmdet's mAP back, image ids included."""
    import torch
    from mmdet.datasets import VOCDataset
    from mmengine.structures import InstanceData

    pipeline = [
        dict(type="LoadImageFromFile", _scope_="mmdet"),
        dict(type="LoadAnnotations", with_bbox=True, _scope_="mmdet"),
        dict(type="PackDetInputs", _scope_="mmdet"),
    ]
    ds = VOCDataset(
        data_root=str(demo_root / "VOCdevkit"),
        ann_file="VOC2007/ImageSets/Main/test.txt",
        data_prefix=dict(sub_data_root="VOC2007/"),
        test_mode=True,
        pipeline=pipeline,
    )
    g = torch.Generator().manual_seed(0)
    metric = VOCMetricPerClass(metric="mAP", eval_mode="11points")
    metric.dataset_meta = ds.metainfo
    for i in range(len(ds)):
        s = ds[i]["data_samples"]
        gt = s.gt_instances
        noisy = gt.bboxes.tensor + torch.randn(tuple(gt.bboxes.shape), generator=g) * 6
        boxes = torch.cat([noisy, torch.rand(3, 4, generator=g).sort(dim=1).values * 60])
        labels = torch.cat([gt.labels, torch.randint(0, 4, (3,), generator=g)])
        s.pred_instances = InstanceData(bboxes=boxes, labels=labels, scores=torch.rand(len(boxes), generator=g))
        metric.process({}, [s.to_dict()])
    res = metric.compute_metrics(metric.results)
    assert 0.0 < res["mAP"] < 1.0
    assert sum(len(a["bboxes_ignore"]) for a, _ in metric.per_image_results) > 0  # difficult boxes are exercised
    write_per_image_detections(tmp_path / "per_image_detections.npz", metric.per_image_results, "11points", 0.5)
    ids, stat = per_image_statistic(tmp_path / "results.json", {"kind": "detection"}, "mAP")
    assert ids == sorted(str(ds.get_data_info(i)["img_id"]) for i in range(len(ds)))
    assert stat(np.ones((1, len(ids))))[0] == pytest.approx(100 * res["mAP"], abs=1e-4)


def test_ood_columns_show_the_papers_detector_only(results: Path):
    """An odin / energy record of the same checkpoint and data is another measurement, not a rerun of the msp cell."""
    for det, tnr in (("msp", 40.0), ("energy", 55.0), ("odin", 60.0)):
        _write(
            results / f"ood_{det}",
            "ood",
            "a" * 64,
            "ckpt/demo_baseline.pth",
            {"tnr_at_tpr95": tnr, "auroc": 80.0, "top1_err": 3.0},
            dataset="cifar100",
            detector=det,
        )
    notes: list[str] = []
    rows = build_rows(find_records([results]), notes, strict=False)
    assert rows[0].values["OOD TNR@TPR95 (mean)"] == 40.0
    assert not any("OOD" in n for n in notes)


def test_maps_only_wsol_record_joins_its_source_checkpoint_row(results: Path):
    """A --scoremaps run on this project's cams.npz is keyed by the maps' sha256 and carries the source checkpoint:
    the report puts it in that checkpoint's row (here on other data than the model-path record: its own cell)."""
    _write(
        results / "wsol_maps",
        "wsol",
        "c" * 64,
        "wsol_base/cams.npz",
        {"top1_loc": 0.0, "maxboxacc_v2": 55.5},
        dataset="imagenet",
        source_checkpoint={"path": "ckpt/demo_baseline.pth", "sha256": "a" * 64},
    )
    rows = build_rows(find_records([results]))
    assert len(rows) == 2  # no third row for the maps' own sha256
    assert rows[0].sha256 == "a" * 64 and rows[0].values["ImageNet MaxBoxAccV2"] == 55.5


def test_cifar_classification_has_its_own_column(results: Path):
    """A CIFAR-100 classifier's top-1 error is its own column (the paper's Table 5 beside Table 12), not the
    ImageNet-sized one (other data and scale)."""
    _write(
        results / "cls_cifar",
        "classification",
        "d" * 64,
        "ckpt/cifar_cutmix.pth",
        {"top1_err": 24.5},
        dataset="cifar100",  # as train_cls and test_cls name CIFAR-100 (clseval/identity.py)
    )
    rows = {r.sha256: r for r in build_rows(find_records([results]))}
    assert rows["d" * 64].values == {"CIFAR-100 top-1 err": 24.5}
    assert rows["a" * 64].values["top-1 err"] == 10.0 and "CIFAR-100 top-1 err" not in rows["a" * 64].values
    table = list(csv.DictReader(io.StringIO(to_csv(list(rows.values()) + paper_rows()))))
    pyr = [t for t in table if t["label"].startswith("paper (PyramidNet-200, CIFAR-100)")]
    # Table 5 (CIFAR-100): baseline, + Mixup (alpha = 1.0), + Cutout, + CutMix
    assert [float(t["CIFAR-100 top-1 err"]) for t in pyr] == [16.45, 15.63, 16.53, 14.47]
    assert all(t["top-1 err"] == "" for t in pyr)


# ---- protocol identity (issue 23): two protocols never share a cell; old records read 'unrecorded' ----
def _version1(rec: dict) -> dict:
    """The record as a tool wrote it before the protocol block: no record_version, a free-text `protocol`."""
    old = {k: v for k, v in rec.items() if k != "record_version"}
    old["protocol"] = {"fgsm": "x + eps/255 * sign(grad), clipped", "inbetween": "lambda is the share of the second"}
    return old


def test_two_protocols_never_share_a_cell_and_old_records_read_unrecorded(tmp_path: Path):
    data = data_identity("imagenet", "val", tmp_path, ["img1", "img2"])
    sha = "e" * 64
    fields = dict(fgsm_space="pixels", occlusion_fill="black", cpu_pin="avx2-threads2")
    for name, value, created, proto in (
        ("pixels", 30.0, "2026-03-01T00:00:00", fields),
        ("normalized", 55.0, "2026-03-02T00:00:00", {**fields, "fgsm_space": "normalized"}),
        ("old", 31.0, "2026-01-01T00:00:00", fields),
    ):
        rec = _rec(
            "robustness", sha, "cutmix", {"fgsm_top1_eps8": value}, data, created, dataset="imagenet", protocol=proto
        )
        write_record(tmp_path / name, _version1(rec) if name == "old" else rec)
    records = find_records([tmp_path])
    by_name = {p.parent.name: rec for p, rec in records}
    assert by_name["pixels"]["record_version"] == 2 and by_name["pixels"]["protocol"] == dict(sorted(fields.items()))
    assert protocol_identity(by_name["old"]) == "unrecorded"  # a free-text block of a version-1 record
    assert protocol_identity(by_name["pixels"]) != protocol_identity(by_name["normalized"])
    notes: list[str] = []
    (row,) = build_rows(records, notes)
    # protocol numbers by first appearance (oldest first): the old record is 1
    assert row.values == {
        "ImageNet FGSM top-1 [protocol 1]": 31.0,
        "ImageNet FGSM top-1 [protocol 2]": 30.0,
        "ImageNet FGSM top-1 [protocol 3]": 55.0,
    }
    legend = next(n for n in notes if n.startswith("Records under different protocols"))
    assert "protocol 1 = unrecorded" in legend
    assert 'protocol 2 = fgsm_space="pixels"' in legend and 'protocol 3 = fgsm_space="normalized"' in legend
    assert any("predate the protocol block" in n and "old/results.json" in n for n in notes)
    assert not any(n.startswith("Rerun") for n in notes)  # different protocols are not reruns of one cell
    # one protocol, two records: a rerun of one cell, the newest shown
    write_record(
        tmp_path / "again",
        _rec(
            "robustness",
            sha,
            "cutmix",
            {"fgsm_top1_eps8": 33.0},
            data,
            "2026-04-01",
            dataset="imagenet",
            protocol=fields,
        ),
    )
    notes = []
    (row,) = build_rows(find_records([tmp_path]), notes)
    assert row.values["ImageNet FGSM top-1 [protocol 2]"] == 33.0
    assert any(n.startswith("Rerun: 2 records") for n in notes)


def test_make_record_always_has_a_protocol_block_with_the_cpu_pin():
    rec = make_record("detection", checkpoint_info("x.pth", "f" * 64, "resnet50"), "voc07", "test", {"mAP": 1.0})
    assert rec["record_version"] == 2 and set(rec["protocol"]) == {"cpu_pin"}
    machine = rec["machine"]
    want = f"avx2-threads{machine['env']['CUTMIX_PIN_THREADS']}" if machine["pinned"] else "unpinned"
    assert rec["protocol"]["cpu_pin"] == want
    block = protocol_block(b=(1, 2), a="x", cpu_pin="given")
    assert list(block) == ["a", "b", "cpu_pin"] and block["b"] == [1, 2] and block["cpu_pin"] == "given"
    with pytest.raises(ValueError, match="not a JSON value"):
        protocol_block(fn=print)


def test_version1_robustness_curves_are_flipped_to_the_share_of_the_first_image():
    new = make_record(
        "robustness", checkpoint_info("n_cutmix.pth", "1" * 64, "resnet18"), "imagenet", "val", {}, curves={}
    )
    new["curves"] = _robustness_curves(0.0)
    old = _version1({**new, "checkpoint": checkpoint_info("o_mixup.pth", "2" * 64, "resnet18")})
    figures = robustness_series([(Path("n"), new), (Path("o"), old)])
    assert sorted(figures) == ["imagenet_1", "imagenet_2"]  # an unrecorded protocol is its own figure
    series = {label: curves for lines in figures.values() for label, _, curves in lines}
    assert series["cutmix"]["inbetween"]["mixup"]["ratios"] == [0.0, 0.5, 1.0]  # version 2: as recorded
    assert series["mixup"]["inbetween"]["mixup"]["ratios"] == [1.0, 0.5, 0.0]  # version 1: 1 - share of the second
    assert series["mixup"]["inbetween"]["cutmix"]["ratios"] == [1.0, 0.75, 0.0]
    assert series["mixup"]["inbetween"]["mixup"]["neither"] == new["curves"]["inbetween"]["mixup"]["neither"]


def test_robustness_overlay_is_keyed_on_the_full_cell_identity(tmp_path: Path):
    """One figure per (dataset, data identity, protocol identity): a checkpoint under two protocols, or on two image
    sets, keeps every record, and two checkpoints on different images are never drawn in one figure unnoted."""
    full = data_identity("imagenet", "val", tmp_path, [f"i{k}" for k in range(5)])
    one = data_identity("imagenet", "val", tmp_path, ["i0"])
    recs = []
    for name, sha, data, space in (
        ("cutmix_pixels", "3", full, "pixels"),
        ("cutmix_normalized", "3", full, "normalized"),
        ("baseline_one", "6", one, "pixels"),
        ("baseline_full", "6", full, "pixels"),
    ):
        rec = make_record(
            "robustness",
            checkpoint_info(f"{name}.pth", sha * 64, "resnet18"),
            "imagenet",
            "val",
            {"fgsm_top1_eps8": 1.0},
            data=data,
            curves=_robustness_curves(0.0),
            protocol={"fgsm_space": space},
        )
        recs.append((Path(name), rec))
    series = robustness_series(recs)
    assert {k: [label for label, _, _ in v] for k, v in series.items()} == {
        "imagenet_1": ["baseline", "cutmix"],  # full data, pixels: the two checkpoints together
        "imagenet_2": ["cutmix"],  # full data, normalized
        "imagenet_3": ["baseline"],  # one image, pixels
    }
    (note,) = robustness_notes(recs)
    assert 'robustness_imagenet_2.png = imagenet val' in note and '"normalized"' in note and "1 images" in note


def test_table12_is_the_mean_of_table_a2_and_the_per_set_table(tmp_path: Path):
    for method, rows in PAPER_TABLE_A2.items():
        assert list(rows) == list(PAPER_TABLE_A2_SETS)  # the seven sets of Appendix E.2
        means = np.mean([v for v in rows.values()], axis=0)
        table12 = PAPER_TABLE12_OOD[method]
        want = [table12["OOD TNR@TPR95 (mean)"], table12["OOD AUROC (mean)"], table12["OOD detection acc (mean)"]]
        assert np.round(means, 1) == pytest.approx(want, abs=0.051), method  # Table 12 rounds to 0.1
    assert PAPER_TABLE_A2["baseline"]["Imagenet"] == (43.0, 88.9, 81.3)
    assert PAPER_TABLE_A2["cutmix"]["Imagenet"] == (57.1, 92.4, 85.0)
    per_set = {
        "Imagenet": {"tnr_at_tpr95": 50.0, "auroc": 90.0, "detection_acc": 84.0},
        "uniform": {"tnr_at_tpr95": 99.0, "auroc": 99.5, "detection_acc": 98.0},
    }
    for sha, method, proto in (("4", "baseline", "exact"), ("5", "cutmix", "exact"), ("5", "cutmix", "odin")):
        write_record(
            tmp_path / "runs" / f"{method}_{proto}",
            _rec(
                "ood",
                sha * 64,
                method,
                {"tnr_at_tpr95": 1.0, "auroc": 2.0, "detection_acc": 3.0},
                data_identity("cifar100", "test", tmp_path, ["a"]),
                dataset="cifar100",
                detector="msp",
                ood_sets=list(per_set),
                per_set=per_set,
                protocol={"metrics_as": proto},
            ),
        )
    paths = write_report([tmp_path / "runs"], tmp_path / "report", paper=True, bootstrap=0)
    md = paths["markdown"].read_text()
    assert "## OOD detection per set" in md and "Table A2" in md
    table = list(csv.DictReader(io.StringIO(paths["ood_sets_csv"].read_text())))
    assert [(t["method"], t["set"], t["protocol"].split(",")[0]) for t in table] == [
        ("baseline", "Imagenet", "metrics_as=exact"),
        ("baseline", "uniform", "metrics_as=exact"),
        ("cutmix", "Imagenet", "metrics_as=exact"),
        ("cutmix", "uniform", "metrics_as=exact"),
        ("cutmix", "Imagenet", "metrics_as=odin"),
        ("cutmix", "uniform", "metrics_as=odin"),
    ]
    assert [float(t["paper tnr_at_tpr95"]) for t in table[:4]] == [43.0, 0.0, 57.1, 100.0]
    assert float(table[2]["auroc"]) == 90.0 and float(table[3]["paper detection_acc"]) == 99.7
    # the main table: the cutmix checkpoint's two protocols are two columns
    main = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert {k for k in main[0] if k.startswith("OOD AUROC")} == {
        "OOD AUROC (mean) [protocol 1]",
        "OOD AUROC (mean) [protocol 2]",
    }


# ---- replicates (records that differ only in the training seed), paired tests by column kind, Holm ----


def test_replicates_by_seed_reruns_by_same_seed_and_old_records(tmp_path: Path):
    cub = data_identity("cub", "test", tmp_path / "CUB", ["1", "2", "3"])
    runs = [  # (folder, train_seed, top1_loc, created)
        ("s0", 0, 40.0, "2026-02-01T00:00:00"),
        ("s1_old", 1, 1.0, "2026-02-02T00:00:00"),
        ("s1", 1, 44.0, "2026-02-03T00:00:00"),  # the same seed again: a rerun, the newest is shown
        ("s2", 2, 47.0, "2026-02-04T00:00:00"),
        ("noseed", None, 99.0, "2026-02-05T00:00:00"),  # older tool, no train_seed: a rerun, not a replicate
    ]
    recs = []
    for folder, seed, loc, created in runs:
        extra = {} if seed is None else {"train_seed": seed}
        rec = _rec("wsol", "a" * 64, "baseline", {"top1_loc": loc}, cub, created, dataset="cub", **extra)
        write_record(tmp_path / folder, rec)
        recs.append(rec)
    assert len({protocol_identity(r) for r in recs}) == 1  # the seed is not part of the protocol identity
    notes: list[str] = []
    (row,) = build_rows(find_records([tmp_path]), notes)
    assert row.run_seeds["CUB loc acc"] == [0, 1, 2] and row.run_values["CUB loc acc"] == [40.0, 44.0, 47.0]
    mean = (40.0 + 44.0 + 47.0) / 3
    sd = math.sqrt(((40.0 - mean) ** 2 + (44.0 - mean) ** 2 + (47.0 - mean) ** 2) / 2)
    assert row.values["CUB loc acc"] == pytest.approx(mean)
    assert f"| {mean:.2f} ± {sd:.2f} (n=3) |" in to_markdown([row])
    rerun = [n for n in notes if n.startswith("Rerun")]
    assert len(rerun) == 2
    assert "(train_seed 1)" in rerun[0] and rerun[0].index("s1/results.json") < rerun[0].index("s1_old/results.json")
    assert "(no train_seed, beside runs that record one)" in rerun[1] and "noseed/results.json" in rerun[1]
    assert any(n.startswith("Replicates: baseline") and "train_seed 0, 1, 2" in n for n in notes)
    with pytest.raises(ConfigError, match="--strict: Rerun"):
        build_rows(find_records([tmp_path]), [], strict=True)
    # replicates alone are no rerun: --strict passes
    for folder in ("s1_old", "noseed"):
        (tmp_path / folder / "results.json").unlink()
    (row,) = build_rows(find_records([tmp_path]), [], strict=True)
    assert len(row.runs["CUB loc acc"]) == 3


def _fgsm_runs(tmp_path: Path, n: int = 30) -> dict[str, list[np.ndarray]]:
    """Three seeds per checkpoint, every run scored on the same n images (robustness per_image.csv)."""
    rng = np.random.default_rng(5)
    ids = [f"img{i:03d}" for i in range(n)]
    out: dict[str, list[np.ndarray]] = {}
    for sha, method, p in (("a" * 64, "baseline", 0.4), ("b" * 64, "cutmix", 0.6)):
        for seed in range(3):
            correct = (rng.random(n) < p).astype(int)
            folder = tmp_path / f"{method}_seed{seed}"
            metrics = {"fgsm_top1_eps8": 100 * correct.mean()}
            data = data_identity("imagenet", "val", tmp_path, ids)
            write_record(folder, _rec("robustness", sha, method, metrics, data, dataset="imagenet", train_seed=seed))
            lines = ["index,image_id,fgsm_correct_eps8"] + [f"{i},{ids[i]},{c}" for i, c in enumerate(correct)]
            (folder / "per_image.csv").write_text("\n".join(lines) + "\n")
            out.setdefault(method, []).append(100.0 * correct)
    return out


def test_replicate_cells_and_their_difference_by_hand(tmp_path: Path):
    from scipy.stats import t as student

    runs = _fgsm_runs(tmp_path)
    n, b_count, seed = 30, 200, 4
    paths = write_report([tmp_path], tmp_path / "rep", bootstrap=b_count, seed=seed)
    md = paths["markdown"].read_text()
    # one shared image-count matrix for every run of both checkpoints, drawn as bootstrap.py draws it
    w = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=b_count)
    for k, method in enumerate(("baseline", "cutmix")):  # cell k of the report's draws
        full = np.array([x.mean() for x in runs[method]])
        boot = np.stack([w @ x / n for x in runs[method]])  # (3 runs, B)
        draws = np.random.default_rng([seed, k]).multinomial(3, np.full(3, 1 / 3), size=b_count)
        run_mean = np.einsum("rb,br->b", boot, draws) / 3
        lo, hi = np.quantile(run_mean, [0.025, 0.975])
        m, sd = full.mean(), full.std(ddof=1)
        var = sd**2 / 3
        extra = max(0.0, student.ppf(0.975, 2) ** 2 * var - 1.959964**2 * (2 / 3) * var)
        lo, hi = m - math.sqrt((m - lo) ** 2 + extra), m + math.sqrt((hi - m) ** 2 + extra)
        cell = f"{m:.2f} ± {sd:.2f} (n=3) [{lo:.2f}, {hi:.2f}]"
        assert cell in md, (cell, md)
    # the difference of run means: the exact run-label permutation (all C(6, 3) = 20 relabelings) and P(A better)
    a = np.array([x.mean() for x in runs["cutmix"]])
    b = np.array([x.mean() for x in runs["baseline"]])
    pooled, obs = np.concatenate([a, b]), a.mean() - b.mean()
    diffs = [pooled[list(s)].mean() - np.delete(pooled, list(s)).mean() for s in itertools.combinations(range(6), 3)]
    p = np.mean([abs(d) >= abs(obs) - 1e-9 for d in diffs])
    prob = np.mean([(x > y) + 0.5 * (x == y) for x in a for y in b])
    line = next(x for x in md.splitlines() if "ImageNet FGSM top-1, cutmix − baseline" in x)
    assert f": {obs:+.2f} [" in line
    described = "(exact run-label permutation, 3 vs 3 runs, 20 relabelings, smallest possible p 0.10)"
    assert f"p = {format_p(p)} {described}, Holm-adjusted p = {format_p(p)};" in line  # a family of one
    assert f"P(cutmix better than baseline) = {prob:.2f} [" in line
    assert "test images and training runs (3 vs 3 runs)" in line and "(30 images)" in line
    table = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert table[1]["ImageNet FGSM top-1 runs"] == "3"
    assert float(table[1]["ImageNet FGSM top-1 run_sd"]) == pytest.approx(a.std(ddof=1), abs=1e-4)


def test_paired_tests_by_column_kind_and_holm(tmp_path: Path):
    """FGSM top-1 (0/1 per image): exact McNemar; mAP: the swap permutation, here all 2^6 swaps, each checked by
    mmdet's eval_map on explicitly swapped detections; Holm over the two by hand."""
    from tests.test_bootstrap import _det_case

    correct = _robustness_pair(tmp_path)
    dets_a, gts = _det_case(11, n=6)
    dets_b, _ = _det_case(12, n=6)  # another checkpoint's detections on the same images
    dets_b = [[d.copy() for d in img] for img in dets_b]
    for i, g in enumerate(gts):
        g["img_id"] = f"{i:06d}"
    for sha, method, dets in (("a" * 64, "baseline", dets_a), ("b" * 64, "cutmix", dets_b)):
        folder = tmp_path / f"det_{method}"
        mapv = 100 * mmdet_voc_map(dets, gts)
        write_record(folder, _rec("detection", sha, method, {"mAP": mapv}, detector="faster_rcnn"))
        write_per_image_detections(folder / "per_image_detections.npz", list(zip(gts, dets)), "11points", 0.5)
    md = write_report([tmp_path], tmp_path / "rep", bootstrap=100, seed=2)["markdown"].read_text()
    obs = mmdet_voc_map(dets_b, gts) - mmdet_voc_map(dets_a, gts)
    swapped = []
    for s in itertools.product((0, 1), repeat=6):
        da = [dets_a[i] if si else dets_b[i] for i, si in enumerate(s)]
        db = [dets_b[i] if si else dets_a[i] for i, si in enumerate(s)]
        swapped.append(mmdet_voc_map(da, gts) - mmdet_voc_map(db, gts))
    p_map = np.mean([abs(d) >= abs(obs) - 1e-9 for d in swapped])
    b = int(np.sum((correct["cutmix"] == 1) & (correct["baseline"] == 0)))
    c = int(np.sum((correct["cutmix"] == 0) & (correct["baseline"] == 1)))
    p_fgsm = min(1.0, 2 * sum(math.comb(b + c, i) for i in range(min(b, c) + 1)) / 2 ** (b + c))
    # Holm by hand: the smaller p times 2, the larger times 1, then the running maximum
    small, large = sorted([p_map, p_fgsm])
    adj_small = min(1.0, 2 * small)
    adj = {small: adj_small, large: max(adj_small, min(1.0, large))}
    map_line = next(x for x in md.splitlines() if "Faster R-CNN VOC07 mAP, cutmix − baseline" in x)
    fgsm_line = next(x for x in md.splitlines() if "ImageNet FGSM top-1, cutmix − baseline" in x)
    assert f"{100 * obs:+.2f} [" in map_line
    assert f"p = {format_p(p_map)} (exact swap permutation, all 64 swaps of 6 images" in map_line
    assert f"Holm-adjusted p = {format_p(adj[p_map])};" in map_line and "(6 images)" in map_line
    assert f"p = {format_p(p_fgsm)} (exact McNemar, {b} vs {c} discordant images" in fgsm_line
    assert f"Holm-adjusted p = {format_p(adj[p_fgsm])};" in fgsm_line
    assert "(2 in the family;" in md and "p <" not in md
