#!/usr/bin/env python
"""Throughput of the corruption evaluator on the released ImageNet-C layout against a plain forward of the same
batches (issue 27: target >= 0.95x).

    python benchmarks/corruption.py [--arch resnet18] [--batch 64] [--workers 4] [--device cpu] [--reps 3]

The script writes a small ImageNet-C-layout folder of 224 px JPEGs at the release's quality 85 (--corruptions x 5
severities x --classes wnid folders x --per-class images; textured synthetic pictures, so decoding costs what a real
224 px JPEG costs), saves a freshly initialised classifier of --arch, then times per round:
- eval: `evaluate_corruptions` on that folder (JPEG decode in --workers loader processes, centre crop, normalise,
  forward, softmax, bookkeeping); its loop time is the record's timing data_wait_s + forward_s, its end-to-end time
  total_s (directory scan, checkpoint load and the writing of results.json / per_image.csv / predictions.npz too);
- forward: the same batches (same count and batch size), decoded beforehand into memory, through the model alone.
Throughput = images / seconds, median over --reps rounds (eval and forward alternate). Writes
benchmarks/results/corruption.json (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import environment, parse_args, report_result
from PIL import Image
from torchvision.transforms import functional as TF

from cutmix_transfer.backbones import build_model
from cutmix_transfer.corruptions import CorruptionEvalConfig, evaluate_corruptions
from cutmix_transfer.datasets.common import IMAGENET_MEAN, IMAGENET_STD
from cutmix_transfer.datasets.corruptions import ALL_CORRUPTIONS

SIDE = 224


def write_layout(root: Path, corruptions: int, classes: int, per_class: int, seed: int) -> list[Path]:
    """The ImageNet-C layout with textured 224 px JPEGs (quality 85); -> every file, in the evaluator's item order."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    files = []
    for c in ALL_CORRUPTIONS[:corruptions]:
        for s in range(1, 6):
            for k in range(classes):
                d = root / c / str(s) / f"n{k:08d}"
                d.mkdir(parents=True, exist_ok=True)
                for i in range(per_class):
                    base = np.stack([xx * rng.uniform(), yy * rng.uniform(), np.sin(9 * xx * yy)], -1) * 200
                    img = np.uint8(np.clip(base + rng.normal(0, 25, base.shape), 0, 255))
                    path = d / f"img_{k}_{i}.JPEG"
                    Image.fromarray(img).save(path, quality=85, optimize=True)
                    files.append(path)
    return files


def run(arch, corruptions, classes, per_class, batch, workers, device, reps, seed) -> dict:
    torch.manual_seed(seed)
    dev = torch.device(device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ImageNet-C"
        files = write_layout(root, corruptions, classes, per_class, seed)
        ckpt = Path(tmp) / f"{arch}.pth"
        model = build_model(arch, classes).eval()
        torch.save(model.state_dict(), ckpt)
        model = model.to(dev)
        pixels = [TF.normalize(TF.to_tensor(Image.open(f).convert("RGB")), IMAGENET_MEAN, IMAGENET_STD) for f in files]
        batches = [torch.stack(pixels[i : i + batch]) for i in range(0, len(pixels), batch)]
        cfg = CorruptionEvalConfig(
            backbone=ckpt,
            dataset="imagenet",
            corruption_root=root,
            batch_size=batch,
            workers=workers,
            device=device,
            out=Path(tmp) / "out",
            progress=False,
        )

        def forward() -> float:
            t0 = time.perf_counter()
            with torch.inference_mode():
                for b in batches:
                    model(b.to(dev, non_blocking=True))
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            return time.perf_counter() - t0

        forward()  # warm-up
        evaluate_corruptions(cfg)
        loop, wait, model_s, total, fwd = [], [], [], [], []
        for _ in range(reps):
            timing = evaluate_corruptions(cfg).record["timing"]
            loop.append(timing["data_wait_s"] + timing["forward_s"])
            wait.append(timing["data_wait_s"])
            model_s.append(timing["forward_s"])
            total.append(timing["total_s"])
            fwd.append(forward())
    n = len(files)
    t_loop, t_total, t_fwd = (statistics.median(x) for x in (loop, total, fwd))
    return {
        "arch": arch,
        "batch": batch,
        "workers": workers,
        "image_size": SIDE,
        "num_images": n,
        "num_sets": corruptions * 5,
        **environment(dev),
        "cpu_count": os.cpu_count(),
        "reps": reps,
        "load_average_1min_at_end": os.getloadavg()[0],
        "images_per_s": {"forward": n / t_fwd, "eval_loop": n / t_loop, "eval_end_to_end": n / t_total},
        "seconds": {"forward": t_fwd, "eval_loop": t_loop, "eval_end_to_end": t_total},
        # the loop's two parts (medians): waiting for the loader's next batch, and the model + bookkeeping on it
        "eval_loop_parts_s": {"data_wait": statistics.median(wait), "forward": statistics.median(model_s)},
        "per_rep_s": {"forward": fwd, "eval_loop": loop, "eval_end_to_end": total},
        "eval_loop_over_forward": t_fwd / t_loop,
        # each round's eval next to the forward right after it: the machine's drift between rounds cancels
        "eval_loop_over_forward_paired_median": statistics.median(f / e for f, e in zip(fwd, loop)),
        "eval_end_to_end_over_forward": t_fwd / t_total,
        "target": 0.95,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet18", help="any arch build_model knows (default resnet18)")
    p.add_argument("--corruptions", type=int, default=2, help="corruption folders (x 5 severities)")
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--per-class", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--reps", type=int, default=3)
    args = parse_args(p, "corruption", argv)
    res = run(
        args.arch, args.corruptions, args.classes, args.per_class, args.batch, args.workers, args.device, args.reps,
        args.seed,
    )  # fmt: skip
    table = [
        (k, f"{res['seconds'][k]:.2f}", f"{v:.1f}", f"{res['seconds']['forward'] / res['seconds'][k]:.3f}")
        for k, v in res["images_per_s"].items()
    ]
    report_result(
        args.out,
        res,
        f"{res['arch']}, {res['num_images']} JPEGs of {SIDE} px in {res['num_sets']} sets, batch {res['batch']}, "
        f"{res['workers']} workers, on {res['device']} ({res['gpu'] or res['machine']}, {res['threads']} threads, "
        f"{res['cpu_count']} CPUs), median of {res['reps']}",
        ("pass", "seconds", "images/s", "x forward"),
        table,
        (18, 9, 10, 10),
        summary=f"eval loop / plain forward = {res['eval_loop_over_forward']:.3f} (target >= 0.95); end to end "
        f"{res['eval_end_to_end_over_forward']:.3f}; median of the rounds' own ratios "
        f"{res['eval_loop_over_forward_paired_median']:.3f}; of the loop, waiting for data "
        f"{res['eval_loop_parts_s']['data_wait']:.2f} s, model and bookkeeping "
        f"{res['eval_loop_parts_s']['forward']:.2f} s",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
