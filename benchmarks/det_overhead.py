"""Iteration time of tools/train_det.py's path against mmdet's own Runner on one config (goal: within 2%).

The tool's path: `prepare_training` (checkpoint conversion, depth adaptation, provenance hook) + key report +
`Runner.train()`. The plain path: `Runner.from_cfg` on the same prepared config without the project's hook,
the backbone initialised by mmengine directly from the raw checkpoint. Both train Faster R-CNN (ResNet-18 FPN,
random weights) on generated VOC data for the same iterations; runs alternate A B B A A B ... so that load
drifting on a shared machine hits both alike, and the overhead is the median of the per-pair ratios.
Writes benchmarks/results/det_overhead.json and prints a table.

    .venv/bin/python benchmarks/det_overhead.py [--iters 20] [--repeats 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from _common import REPO, medians
from mmengine.hooks import Hook
from mmengine.runner import Runner

from cutmix_transfer.datasets.demo import make_demo_data
from cutmix_transfer.detection import prepare_training, report_backbone_keys
from cutmix_transfer.io import atomic_write_json
from cutmix_transfer.runner import build_runner

CONFIG = REPO / "configs" / "voc_faster_rcnn_demo.py"
OUT = REPO / "benchmarks" / "results" / "det_overhead.json"


class IterTimes(Hook):
    """Wall time of each train iteration (data loading + step); `run` drops the first ones as warm-up."""

    priority = "VERY_HIGH"

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t = 0.0

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._t = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.times.append(time.perf_counter() - self._t)


def _bench_cfg(cfg, iters: int, work_dir: Path):
    """The same short, iteration-based schedule for both paths: no validation, no checkpoint saving."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=10**9)
    cfg.param_scheduler = []
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=10**6)
    cfg.log_level = "WARNING"
    return cfg


def run(iters: int, repeats: int, seed: int, data_root: Path | None) -> dict:
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="det_overhead_"))
    if data_root is None:
        make_demo_data(tmp / "demo", seed=seed, per_class=8, num_classes=4, layouts=("voc",), progress=False)
        data_root = tmp / "demo" / "VOCdevkit"
    ckpt = tmp / "resnet18_cutmix.pth"
    torch.manual_seed(seed)
    torch.save(torchvision.models.resnet18().state_dict(), ckpt)
    options = {"train_dataloader.batch_size": 2}

    times: dict[str, list[float]] = {"train_det": [], "plain_runner": []}
    run_median: dict[str, list[float]] = {"train_det": [], "plain_runner": []}
    setup: dict[str, list[float]] = {"train_det": [], "plain_runner": []}
    for r in range(repeats):
        order = ("train_det", "plain_runner") if r % 2 == 0 else ("plain_runner", "train_det")
        for path in order:
            t0 = time.perf_counter()
            prepared = prepare_training(
                CONFIG, backbone=ckpt, work_dir=tmp / f"{path}{r}", cfg_options=options, seed=seed, data_root=data_root
            )
            if path == "train_det":
                cfg = _bench_cfg(prepared.cfg, iters, tmp / f"{path}{r}")
                runner = build_runner(cfg)
                report_backbone_keys(runner, prepared)
            else:  # mmdet's own: the same config, no project hook, backbone init straight from the raw file
                cfg = _bench_cfg(prepared.cfg, iters, tmp / f"{path}{r}")
                cfg.custom_hooks = [h for h in cfg.custom_hooks if h["type"] != "BackboneProvenanceHook"]
                cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=str(ckpt))
                t0 = time.perf_counter()  # the plain path has no conversion step: time only its Runner
                runner = Runner.from_cfg(cfg)
            timer = IterTimes()
            runner.register_hook(timer)
            setup[path].append(time.perf_counter() - t0)
            runner.train()
            kept = timer.times[min(3, len(timer.times) - 1) :]  # the first iterations are warm-up
            times[path].extend(kept)
            run_median[path].append(statistics.median(kept))
    med = medians(times)
    ratios = [a / b for a, b in zip(run_median["train_det"], run_median["plain_runner"])]
    overhead = 100.0 * (statistics.median(ratios) - 1.0)
    return {
        "config": str(CONFIG.relative_to(REPO)),
        "backbone": "resnet18 (random weights)",
        "iters": iters,
        "repeats": repeats,
        "batch_size": 2,
        "threads": 1,
        "median_iter_s": med,
        "mean_iter_s": {k: statistics.fmean(v) for k, v in times.items()},
        "setup_s": {k: statistics.fmean(v) for k, v in setup.items()},
        "samples": {k: len(v) for k, v in times.items()},
        "run_median_iter_s": run_median,
        "pair_ratios": ratios,
        "overhead_percent": overhead,
        "goal_percent": 2.0,
        "within_goal": abs(overhead) <= 2.0,
        "device": "cpu",
        "torch": torch.__version__,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--repeats", type=int, default=4, help="runs of each path, in A B B A order")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", type=Path, default=None, help="a VOCdevkit folder (default: generated)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    res = run(args.iters, args.repeats, args.seed, args.data_root)
    atomic_write_json(args.out, res)
    print(f"{'path':<14}{'median s/iter':>15}{'mean s/iter':>13}{'setup s':>10}")
    for k in ("train_det", "plain_runner"):
        med, mean, setup = res["median_iter_s"][k], res["mean_iter_s"][k], res["setup_s"][k]
        print(f"{k:<14}{med:>15.4f}{mean:>13.4f}{setup:>10.2f}")
    print(f"overhead {res['overhead_percent']:+.2f}% (goal within {res['goal_percent']:.0f}%) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
