#!/usr/bin/env python
"""Images per second of the classification evaluator (tools/test_cls.py) against a plain forward of the same decoded
batches, decoding timed apart (one CPU thread by default).

    python benchmarks/test_cls.py [--arch cifar_resnet20_basic_zeropad] [--images 512] [--batch 128] [--reps 5]

The images are the generated CIFAR-100-layout demo (10 classes, 32 px), read by the evaluator's own reader. Timed,
each the median over --reps rounds after one warm-up (round robin, so load changes hit both alike):
- decode: the evaluator's DataLoader (in this process) turning the test batch into normalised tensor batches;
- forward: `model(x)` under inference_mode on each decoded batch, nothing else;
- test_cls: the evaluator's `classify` (unreadable-image check, forward, logits to numpy) on the same decoded
  batches, then `summarize` (top-1 / top-5, NLL, ECE, RMS, and temperature scaling fitted on half the images);
- metrics: `summarize` alone on those logits (timed by itself, so a loaded machine's noise in the two passes above
  does not hide the evaluator's own extra cost).
Goal (issue 26): test_cls within 5% of forward. Writes benchmarks/results/test_cls.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
import torch
from _common import environment, medians, parse_args, report_result, time_median, time_round_robin
from torchvision.transforms import Normalize

from cutmix_transfer.backbones import build_model
from cutmix_transfer.clseval.data import load_cls_data
from cutmix_transfer.clseval.evaluate import ClsEvalConfig, classify, summarize
from cutmix_transfer.datasets.demo import make_demo_data
from cutmix_transfer.normalization import DATASET_STATS

NUM_CLASSES = 10


def run(arch: str, images: int, batch: int, reps: int, seed: int) -> dict:
    """Generate the data, decode it, time forward against the evaluator; -> JSON-able dict."""
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        per_class = max(1, images // NUM_CLASSES)
        make_demo_data(
            tmp,
            seed=seed,
            num_classes=NUM_CLASSES,
            cifar_test_per_class=per_class,
            cifar_train_per_class=1,
            layouts=("cifar100",),
            progress=False,
        )
        data = load_cls_data("cifar100", tmp, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        data.dataset.normalize = Normalize(*DATASET_STATS["cifar100"])
        n = len(data.labels)
        sampler = [list(range(i, min(i + batch, n))) for i in range(0, n, batch)]

        def decode() -> list[dict]:
            return list(torch.utils.data.DataLoader(data.dataset, batch_sampler=sampler, num_workers=0))

        t_decode, batches = time_median(decode, reps, warmup=1)
    labels = np.asarray(data.labels, dtype=np.int64)
    model = build_model(arch, NUM_CLASSES).eval()
    cpu = torch.device("cpu")
    cfg = ClsEvalConfig(backbone="benchmark", dataset="cifar100", fit_temperature=0.5, seed=seed)

    def forward() -> None:
        with torch.inference_mode():
            for b in batches:
                model(b["image"])

    def test_cls() -> None:
        idx, logits = classify(model, batches, cpu)
        summarize(logits, labels[idx], cfg)

    t = medians(time_round_robin({"forward": forward, "test_cls": test_cls}, reps, cpu, warmup=1))
    idx, logits = classify(model, batches, cpu)
    t_metrics, _ = time_median(lambda: summarize(logits, labels[idx], cfg), reps, warmup=1)
    return {
        "arch": arch,
        "images": n,
        "batch": batch,
        "image_size": 32,
        "num_classes": NUM_CLASSES,
        **environment(cpu),
        "reps": reps,
        "load_average_1min_at_end": os.getloadavg()[0],
        "decode_s": t_decode,
        "decode_images_per_s": n / t_decode,
        "forward_s": t["forward"],
        "forward_images_per_s": n / t["forward"],
        "test_cls_s": t["test_cls"],
        "test_cls_images_per_s": n / t["test_cls"],
        "test_cls_over_forward": t["test_cls"] / t["forward"],
        "metrics_s": t_metrics,  # summarize alone: the part of test_cls's extra cost that is not noise
        "metrics_over_forward": t_metrics / t["forward"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="cifar_resnet20_basic_zeropad", help="any arch build_model knows")
    p.add_argument("--images", type=int, default=512, help="test images (a multiple of 10)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=5)
    args = parse_args(p, "test_cls", argv, threads=1)
    res = run(args.arch, args.images, args.batch, args.reps, args.seed)
    rows = [
        ("decode (apart)", f"{res['decode_s']:.3f}", f"{res['decode_images_per_s']:.0f}", "-"),
        ("forward", f"{res['forward_s']:.3f}", f"{res['forward_images_per_s']:.0f}", "1.000"),
        (
            "test_cls",
            f"{res['test_cls_s']:.3f}",
            f"{res['test_cls_images_per_s']:.0f}",
            f"{res['test_cls_over_forward']:.3f}",
        ),
        ("  of it: metrics", f"{res['metrics_s']:.4f}", "-", f"{res['metrics_over_forward']:.4f}"),
    ]
    report_result(
        args.out,
        res,
        f"{res['arch']}, {res['images']} images of 32 px in batches of {res['batch']}, on {res['device']} "
        f"({res['machine']}, {res['threads']} threads), median of {res['reps']}",
        ("pass", "s", "images/s", "x forward"),
        rows,
        (16, 9, 10, 10),
        summary=f"test_cls / forward = {res['test_cls_over_forward']:.3f} (goal: within 1.05)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
