#!/usr/bin/env python
"""Time the CutMix batch op against a ResNet-50 train step and torchvision.transforms.v2.CutMix on the same batch.

    python benchmarks/augment.py [--batch 64] [--size 224] [--device cpu|cuda] [--threads N] [--steps 3]

Goal (issue 4): the op costs under 1% of the train step and is no slower than torchvision's CutMix.
Writes benchmarks/results/augment.json (atomically) and prints a table. The op timings are medians over
--reps calls (out of place, as torchvision's, and in place, as the training preprocessor runs it); the train
step (in-place CutMix, forward, backward, SGD step) is the median over --steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch
import torchvision
from _common import environment, parse_args, report_result, time_median
from torchvision.transforms import v2

from cutmix_transfer.augment import BatchAugment


def median_s(fn: Callable[[], object], reps: int, device: torch.device) -> float:
    """Median wall seconds of fn() over `reps` calls after three warm-up calls."""
    return time_median(fn, reps, device, warmup=3)[0]


def run(batch: int, size: int, device: str, steps: int, reps: int, num_classes: int, seed: int) -> dict:
    """Measure the three timings; -> the JSON-able result dict."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    images = torch.randn(batch, 3, size, size, device=dev)
    labels = torch.randint(0, num_classes, (batch,), device=dev)

    ours = BatchAugment("cutmix", beta=1.0, prob=1.0, seed=seed)
    tv = v2.CutMix(num_classes=num_classes, alpha=1.0)
    t_ours = median_s(lambda: ours(images, labels), reps, dev)
    t_tv = median_s(lambda: tv(images, labels), reps, dev)
    scratch = images.clone()  # the training path (MixAugmentPreprocessor) pastes into its own batch in place
    ours_inplace = BatchAugment("cutmix", beta=1.0, prob=1.0, seed=seed, inplace=True)
    t_inplace = median_s(lambda: ours_inplace(scratch, labels), reps, dev)

    model = torchvision.models.resnet50(num_classes=num_classes).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)

    def step() -> None:
        mixed = ours_inplace(scratch, labels)
        loss = mixed.loss(model(mixed.images))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t_step, _ = time_median(step, steps, dev, warmup=1)
    return {
        "batch": batch,
        "size": size,
        "num_classes": num_classes,
        **environment(dev),
        "reps": reps,
        "steps": steps,
        "cutmix_ms": 1e3 * t_ours,
        "cutmix_inplace_ms": 1e3 * t_inplace,
        "torchvision_cutmix_ms": 1e3 * t_tv,
        "resnet50_train_step_ms": 1e3 * t_step,
        "cutmix_share_of_step_pct": 100.0 * t_ours / t_step,
        "cutmix_inplace_share_of_step_pct": 100.0 * t_inplace / t_step,
        "speedup_vs_torchvision": t_tv / t_ours,
        "goal_under_1pct_of_step": bool(t_ours < 0.01 * t_step),
        "goal_not_slower_than_torchvision": bool(t_ours <= t_tv),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed ResNet-50 train steps after one warm-up (default 10 on CUDA, 1 on CPU: ~75 s each)",
    )
    p.add_argument("--reps", type=int, default=50, help="timed calls of each augment op")
    p.add_argument("--num-classes", type=int, default=1000)
    args = parse_args(p, "augment", argv)
    steps = args.steps or (10 if args.device.startswith("cuda") else 1)
    res = run(args.batch, args.size, args.device, steps, args.reps, args.num_classes, args.seed)
    table = [
        ("cutmix_transfer CutMix", f"{res['cutmix_ms']:.3f}"),
        ("cutmix_transfer CutMix, in place", f"{res['cutmix_inplace_ms']:.3f}"),
        ("torchvision v2.CutMix", f"{res['torchvision_cutmix_ms']:.3f}"),
        ("ResNet-50 train step", f"{res['resnet50_train_step_ms']:.1f}"),
    ]
    report_result(
        args.out,
        res,
        f"batch {res['batch']} x 3 x {res['size']}^2 on {res['device']} ({res['gpu'] or res['machine']}, "
        f"{res['threads']} threads)",
        ("op", "ms"),
        table,
        (34, 11),
        summary=f"CutMix = {res['cutmix_share_of_step_pct']:.3f}% of the step (goal < 1%: "
        f"{'met' if res['goal_under_1pct_of_step'] else 'NOT met'}); "
        f"{res['speedup_vs_torchvision']:.2f}x torchvision's speed (goal >= 1: "
        f"{'met' if res['goal_not_slower_than_torchvision'] else 'NOT met'})",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
