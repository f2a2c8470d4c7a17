#!/usr/bin/env python
"""Seconds the report's bootstrap adds on demo-sized results (issue 18 goal: under 30 s on 2 cores).

    python benchmarks/report.py [--resamples 1000] [--reps 3] [--threads N] [--permutations 1999]

Writes generated result folders of the demo's sizes for two checkpoints (baseline, cutmix) on the same images:
WSOL on CUB (500 test images: per_image.csv and per_image_ious.npz with 100 CAM thresholds), Faster R-CNN on VOC07
(60 test images, 20 classes, 100 detections per image: per_image_detections.npz), captioning (50 images:
captions.json with per-image CIDEr / ROUGE-L), FGSM robustness (500 images: per_image.csv) and max-softmax OOD
as the demo runs it (200 in-distribution images, three OOD folders of 200, 300 uniform + 300 Gaussian noise:
per_image/*.csv). The record of each is computed from its per-image files (mAP with mmdet's eval_map), so every
cell gets an interval. Then times `write_report` with --bootstrap N against --bootstrap 0 (median of --reps, after
one warm-up of each), and, once, the bootstrap of one OOD column at a real CIFAR-100 run's size (10,000 test
images + --ood-cifar-sets sets of 10,000; 0 skips it), and, once, each column's paired test cutmix - baseline
(significance.paired_test with --permutations random swaps or signs, to the end and with a stop after 20 extremes)
and the BCa jackknife of the max-type columns, and writes benchmarks/results/report.json (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, machine_name, medians, time_round_robin

from cutmix_transfer.io import atomic_write_json, atomic_write_text
from cutmix_transfer.ood.metrics import MeanOverSetsStatistic, mean_metrics, ood_metrics
from cutmix_transfer.report.bootstrap import bootstrap_values
from cutmix_transfer.results import checkpoint_info, data_identity, make_record, write_record


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def make_results(root: Path, seed: int = 0) -> None:
    """Two checkpoints' demo-sized records with per-image files whose recomputed metrics equal the records'."""
    from mmdet.evaluation.functional import eval_map

    from cutmix_transfer.detection.evaluate import write_per_image_detections

    rng = np.random.default_rng(seed)
    for sha, method, skill in (("a" * 64, "baseline", 0.5), ("b" * 64, "cutmix", 0.55)):
        ck = checkpoint_info(f"ckpt/demo_{method}.pth", sha, "resnet18", method)
        # WSOL, CUB test: 500 images, 100 CAM thresholds, IoU curves rising then falling with the threshold
        ids = _ids("cub", 500)
        t = np.linspace(0, 1, 100)[None, :]
        peak = rng.random((500, 1)) * 0.6 + 0.2
        v1 = np.clip(skill + 0.4 * rng.random((500, 1)) - 2.0 * (t - peak) ** 2, 0, 1)
        v2 = np.clip(v1 + 0.05 * rng.standard_normal((500, 100)), 0, 1)
        correct = (rng.random(500) < 0.7).astype(int)
        iou_fixed = v1[:, 20]
        maxbox = 100 * (v1 >= 0.5).mean(axis=0).max()
        maxbox2 = 100 * np.mean([(v2 >= k / 100).mean(axis=0).max() for k in (30, 50, 70)])
        folder = root / f"wsol_{method}"
        write_record(
            folder,
            make_record(
                "wsol",
                ck,
                "cub",
                "test",
                {"top1_loc": 100 * np.mean(correct * (iou_fixed >= 0.5)), "maxboxacc": maxbox, "maxboxacc_v2": maxbox2},
                data=data_identity("cub", "test", root / "CUB", ids),
                protocol={"iou_thresholds": [30, 50, 70]},
            ),
        )
        atomic_write_text(
            folder / "per_image.csv",
            "image_id,correct,iou_fixed\n" + "".join(f"{i},{c},{f:.6f}\n" for i, c, f in zip(ids, correct, iou_fixed)),
        )
        np.savez_compressed(folder / "per_image_ious.npz", image_ids=np.array(ids), iou_v1=v1, iou_v2=v2)
        # detection, VOC07 test: 60 images, 20 classes, 100 detections each
        gts, dets = [], []
        for i in range(60):
            m = int(rng.integers(1, 5))
            xy = rng.random((m, 2)) * 300
            boxes = np.concatenate([xy, xy + 40 + rng.random((m, 2)) * 100], axis=1).astype(np.float32)
            labels = rng.integers(0, 20, size=m)
            gts.append(
                {
                    "bboxes": boxes,
                    "labels": labels,
                    "bboxes_ignore": np.zeros((0, 4), np.float32),
                    "labels_ignore": np.zeros(0, np.int64),
                    "img_id": f"{i:06d}",
                }
            )
            det_labels = np.concatenate([labels, rng.integers(0, 20, size=100 - m)])
            jitter = rng.normal(0, 15 * (1 - skill), size=(m, 4))
            rand_xy = rng.random((100 - m, 2)) * 300
            det_boxes = np.concatenate([boxes + jitter, np.concatenate([rand_xy, rand_xy + 60], axis=1)])
            scores = rng.random(100)
            dets.append(
                [
                    np.concatenate([det_boxes[det_labels == c], scores[det_labels == c, None]], axis=1).astype(
                        np.float32
                    )
                    for c in range(20)
                ]
            )
        mean_ap, _ = eval_map(
            dets,
            gts,
            iou_thr=0.5,
            dataset="voc",
            logger="silent",
            eval_mode="11points",
            use_legacy_coordinate=True,
            nproc=1,
        )
        folder = root / f"det_{method}"
        write_record(
            folder,
            make_record(
                "detection",
                ck,
                "voc2007",
                "test",
                {"mAP": 100 * mean_ap},
                detector="faster_rcnn",
                data=data_identity("voc2007", "test", root / "VOC", [g["img_id"] for g in gts]),
            ),
        )
        write_per_image_detections(folder / "per_image_detections.npz", list(zip(gts, dets)), "11points", 0.5)
        # captioning: 50 images
        ids = _ids("coco", 50)
        cider, rouge = rng.gamma(2.0, 0.3 + skill / 2, 50), rng.random(50)
        folder = root / f"cap_{method}"
        write_record(
            folder,
            make_record(
                "captioning",
                ck,
                "coco:demo",
                "test",
                {"CIDEr": 100 * cider.mean(), "ROUGE-L": 100 * rouge.mean()},
                data=data_identity("coco:demo", "test", root / "COCO", ids),
            ),
        )
        atomic_write_json(
            folder / "captions.json",
            [
                {"image_id": i, "caption": "a b", "CIDEr": float(c), "ROUGE-L": float(r)}
                for i, c, r in zip(ids, cider, rouge)
            ],
        )
        # robustness, ImageNet val: 500 images
        ids = _ids("in", 500)
        fgsm = (rng.random(500) < skill / 2).astype(int)
        folder = root / f"rob_{method}"
        write_record(
            folder,
            make_record(
                "robustness",
                ck,
                "imagenet",
                "val",
                {"fgsm_top1_eps8": 100 * fgsm.mean()},
                data=data_identity("imagenet", "val", root / "IN", ids),
            ),
        )
        atomic_write_text(
            folder / "per_image.csv", "image_id,fgsm_correct_eps8\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, fgsm))
        )
        # OOD, max-softmax on the demo's CIFAR layout: per-image scores as tools/ood_eval.py writes them
        folder = root / f"ood_{method}"
        scores = _ood_scores(rng, 200, OOD_DEMO_SETS, skill)
        per_set = {k: ood_metrics(scores["in_distribution"], s) for k, s in scores.items() if k != "in_distribution"}
        ids = [f"in/{i}" for i in range(200)] + [f"{k}/{i}" for k in per_set for i in range(scores[k].size)]
        write_record(
            folder,
            make_record(
                "ood",
                ck,
                "cifar100",
                "test",
                mean_metrics(per_set),
                detector="msp",
                ood_sets=list(per_set),
                data=data_identity("cifar100", "test", root / "CIFAR", ids),
            ),
        )
        for k, s in scores.items():
            if k == "in_distribution":  # the columns the report reads (ood_eval writes more)
                text = "index,score\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(s))
            else:
                text = "index,image_id,score\n" + "".join(
                    f"{i},test/{i:05d}.jpg,{float(v)!r}\n" for i, v in enumerate(s)
                )
            atomic_write_text(folder / "per_image" / f"{k}.csv", text)


OOD_DEMO_SETS = {"Backgrounds": 200, "Backgrounds_resize": 200, "Crops_48": 200, "uniform": 300, "gaussian": 300}


def _ood_scores(rng: np.random.Generator, n_in: int, sets: dict[str, int], skill: float) -> dict[str, np.ndarray]:
    """Max-softmax-like scores in [0, 1] (in-distribution higher), rounded to 4 decimals so that ties occur."""
    out = {"in_distribution": np.round(rng.beta(2 + 4 * skill, 1.5, n_in), 4)}
    out.update({k: np.round(rng.beta(2, 1.5 + skill, n), 4) for k, n in sets.items()})
    return out


def time_ood_cifar(num_sets: int, resamples: int) -> dict:
    """Seconds of one OOD column's bootstrap (AUROC, TNR@TPR95) at CIFAR-100 size: 10,000 + num_sets x 10,000."""
    scores = _ood_scores(np.random.default_rng(1), 10_000, {f"set{k}": 10_000 for k in range(num_sets)}, 0.5)
    s = np.concatenate(list(scores.values()))
    groups = np.repeat(np.arange(len(scores)), [v.size for v in scores.values()])
    seconds = {}
    for metric in ("auroc", "tnr_at_tpr95"):
        t0 = time.perf_counter()
        bootstrap_values(MeanOverSetsStatistic(s, groups, metric), s.size, resamples, seed=0)
        seconds[metric] = time.perf_counter() - t0
    return {"images": int(s.size), "sets": num_sets, "resamples": resamples, "seconds": seconds}


TEST_CELLS = (  # (folder prefix, record kind, metric) of the report's paired tests timed by time_paired_tests
    ("wsol", "top1_loc"),
    ("wsol", "maxboxacc_v2"),
    ("det", "mAP"),
    ("cap", "CIDEr"),
    ("rob", "fgsm_top1_eps8"),
    ("ood", "auroc"),
    ("ood", "tnr_at_tpr95"),
)


def time_paired_tests(runs: Path, permutations: int) -> dict:
    """Seconds of each column's paired test (cutmix - baseline; significance.paired_test) with `permutations`
    random swaps / signs, run to the end (the worst case: a small p) and with Besag-Clifford's stop after 20
    extremes; and of each max-type column's BCa interval (bootstrap.interval_from_values' 20 jackknife fits)."""
    import json as _json

    from cutmix_transfer.report.bootstrap import interval_method, jackknife_acceleration
    from cutmix_transfer.report.per_image import per_image_statistic
    from cutmix_transfer.report.significance import paired_test

    out = {}
    for prefix, metric in TEST_CELLS:
        stats = []
        for method in ("cutmix", "baseline"):
            rec_path = runs / f"{prefix}_{method}" / "results.json"
            stats.append(per_image_statistic(rec_path, _json.loads(rec_path.read_text()), metric))
        (ids, a), (_, b) = stats
        row = {}
        for key, stop in (("to_the_end", None), ("stop_after_20", 20)):
            t0 = time.perf_counter()
            test = paired_test(a, b, len(ids), permutations, seed=0, stop_after=stop)
            row[key] = time.perf_counter() - t0
            row[f"{key}_p"] = test.describe()
        if interval_method(a) != "percentile":
            t0 = time.perf_counter()
            jackknife_acceleration(a, len(ids))
            row["bca_jackknife"] = time.perf_counter() - t0
        out[f"{prefix} {metric}"] = row
    return {"permutations": permutations, "seconds": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: as the environment says)")
    ap.add_argument("--ood-cifar-sets", type=int, default=6, help="OOD sets of the CIFAR-100-sized timing (0: skip)")
    ap.add_argument("--permutations", type=int, default=1999, help="random permutations of the paired-test timing")
    args = ap.parse_args()
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    from cutmix_transfer.report.table import write_report  # after the thread settings

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_results(root / "runs")
        fns = {
            key: (lambda key=key, n=n: write_report([root / "runs"], root / f"rep_{key}", bootstrap=n, seed=0))
            for key, n in (("bootstrap", args.resamples), ("no_bootstrap", 0))
        }
        times = time_round_robin(fns, args.reps, warmup=1)  # the first round warms up (imports, matplotlib fonts)
        md = (root / "rep_bootstrap" / "report.md").read_text()
        tests = time_paired_tests(root / "runs", args.permutations)
    med = medians(times)
    out = {
        "resamples": args.resamples,
        "reps": args.reps,
        "seconds_median": med,
        "bootstrap_seconds": med["bootstrap"] - med["no_bootstrap"],
        "seconds_all": times,
        "goal_seconds": 30.0,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "machine": machine_name(),
        "python": platform.python_version(),
        "sizes": {
            "wsol_cub": 500,
            "detection_voc07": 60,
            "captioning": 50,
            "robustness": 500,
            "ood_in_distribution": 200,
            "ood_sets": OOD_DEMO_SETS,
            "checkpoints": 2,
        },
        "ood_cifar100": time_ood_cifar(args.ood_cifar_sets, args.resamples) if args.ood_cifar_sets else None,
        "paired_tests": tests,
    }
    atomic_write_json(REPO / "benchmarks" / "results" / "report.json", out)
    print(md)
    print(
        json.dumps(
            {
                k: out[k]
                for k in ("seconds_median", "bootstrap_seconds", "goal_seconds", "ood_cifar100", "paired_tests")
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
