#!/usr/bin/env python
"""Images per second of each OOD detector against a plain forward pass, on CIFAR-sized (32x32) inputs.

    python benchmarks/ood.py [--arch resnet18] [--batch 128] [--device cpu] [--threads N] [--reps 5]

Expectation (issue 15): msp and energy cost one forward pass; odin a forward, a backward (to the input) and a
forward. The script also times a forward + backward to the input alone, so odin's cost can be checked against
(forward + backward) + forward. Writes benchmarks/results/ood.json (atomically) and prints a table. Each timing
is the median over --reps rounds (each pass once per round, so load changes hit all alike) after two warm-up
calls each, on one fixed batch of random images and a freshly initialised 100-class model in eval mode (the
weights do not change the cost).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import torch
from _common import environment, medians, parse_args, report_result, time_round_robin

from cutmix_transfer.backbones import build_model
from cutmix_transfer.ood.detectors import DETECTORS, build_detector


def run(arch: str, batch: int, device: str, reps: int, seed: int) -> dict:
    """Time the plain forward, forward + input backward, and every registered detector; -> JSON-able dict."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    model = build_model(arch, 100, wsol=False).to(dev).eval()
    images = torch.randn(batch, 3, 32, 32, device=dev)

    def forward() -> None:
        with torch.no_grad():
            model(images)

    def forward_backward() -> None:
        x = images.clone().requires_grad_(True)
        torch.autograd.grad(model(x).logsumexp(dim=1).sum(), x)

    fns: dict[str, Callable[[], object]] = {"forward": forward, "forward_backward_to_input": forward_backward}
    for name in sorted(DETECTORS):
        fns[name] = (lambda det: lambda: det(model, images))(build_detector(name))
    t = medians(time_round_robin(fns, reps, dev, warmup=2))
    rows = {
        k: {"ms_per_batch": 1e3 * v, "images_per_s": batch / v, "cost_in_forwards": v / t["forward"]}
        for k, v in t.items()
    }
    odin_expected = t["forward_backward_to_input"] + t["forward"]
    return {
        "arch": arch,
        "batch": batch,
        "image_size": 32,
        "num_classes": 100,
        **environment(dev),
        "reps": reps,
        "load_average_1min_at_end": os.getloadavg()[0],  # other processes on the machine make timings noisier
        "timings": rows,
        "odin_over_forward_backward_plus_forward": t["odin"] / odin_expected,
        "msp_over_forward": t["msp"] / t["forward"],
        "energy_over_forward": t["energy"] / t["forward"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet18", help="any arch build_model knows (default resnet18)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--reps", type=int, default=5)
    args = parse_args(p, "ood", argv)
    res = run(args.arch, args.batch, args.device, args.reps, args.seed)
    table = [
        (name, f"{row['ms_per_batch']:.1f}", f"{row['images_per_s']:.1f}", f"{row['cost_in_forwards']:.2f}")
        for name, row in res["timings"].items()
    ]
    report_result(
        args.out,
        res,
        f"{res['arch']}, batch {res['batch']} x 3 x 32^2, 100 classes, on {res['device']} "
        f"({res['gpu'] or res['machine']}, {res['threads']} threads), median of {res['reps']}",
        ("pass", "ms/batch", "images/s", "x forward"),
        table,
        (28, 11, 11, 11),
        summary=f"msp / forward = {res['msp_over_forward']:.2f}, energy / forward = {res['energy_over_forward']:.2f}, "
        f"odin / (forward+backward + forward) = {res['odin_over_forward_backward_plus_forward']:.2f}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
