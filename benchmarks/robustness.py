#!/usr/bin/env python
"""Time each robustness test against the plain forward pass of the same decoded batch (issue 14, part 4).

    python benchmarks/robustness.py [--arch resnet18] [--size 224] [--batch 16] [--threads 2] [--reps 3]
                                    [--device cpu|cuda] [--out benchmarks/results/robustness.json]

One batch of generated ImageNet-layout images is decoded ONCE (resize 256, centre crop 224, [0, 1] pixels); then,
on that same tensor: the plain forward, FGSM at one eps (forward + input backward + forward of the attacked
batch), and every point of the default curve grids (15 centre and 15 boundary hole sizes, 11 Mixup ratios, 15
CutMix sides), each point one call of the library function the evaluator runs. Each timing is the best of
--reps calls, with the plain forward re-timed before every point so that a noisy shared machine shows in both.
Goal: every curve point costs no more than 1.2x the plain forward. Writes JSON and prints a table.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cutmix_transfer.backbones import build_model  # noqa: E402
from cutmix_transfer.datasets.common import load_rgb  # noqa: E402
from cutmix_transfer.datasets.demo import make_demo_data  # noqa: E402
from cutmix_transfer.datasets.imagenet import load_imagenet_val  # noqa: E402
from cutmix_transfer.io import atomic_write_json  # noqa: E402
from cutmix_transfer.robustness import (  # noqa: E402
    DEFAULT_MIXUP_RATIOS,
    DEFAULT_SIDES,
    PixelClassifier,
    fgsm_predictions,
    scale_sides,
)
from cutmix_transfer.robustness.curves import (  # noqa: E402
    cutmix_predictions,
    mixup_predictions,
    occlusion_predictions,
    predict,
)
from cutmix_transfer.robustness.evaluate import pixel_transform  # noqa: E402

GOAL = 1.2


def _best(fn: Callable[[], object], reps: int, sync: Callable[[], None]) -> float:
    """Best wall time of fn() in seconds over `reps` calls (after one warm-up call)."""
    fn()
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "robustness.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory() as tmp:
        make_demo_data(Path(tmp), seed=0, image_size=args.size, per_class=1, num_classes=4,
                       imagenet_val_per_class=(args.batch + 3) // 4, layouts=("imagenet",), progress=False)
        samples = load_imagenet_val(Path(tmp) / "ILSVRC")[:args.batch]
        transform = pixel_transform(args.size)
        t0 = time.perf_counter()
        pixels = torch.stack([transform(load_rgb(s.path)) for s in samples]).to(device)
        decode_s = time.perf_counter() - t0
    labels = torch.tensor([s.label for s in samples], device=device)
    torch.manual_seed(0)
    model = PixelClassifier(build_model(args.arch, 1000)).eval().to(device)
    model.requires_grad_(False)
    other = torch.flip(pixels, dims=[0])
    n = len(pixels)

    forwards: list[float] = []

    def timed(fn: Callable[[], object]) -> tuple[float, float]:
        """(best time of fn, best time of a plain forward measured just before it)."""
        f = _best(lambda: predict(model, pixels), args.reps, sync)
        forwards.append(f)
        return _best(fn, args.reps, sync), f

    points: list[dict] = []
    t, f = timed(lambda: fgsm_predictions(model, pixels, labels, [8.0]))
    points.append({"test": "fgsm", "point": "eps 8", "seconds": t, "forward_s": f})
    for mode in ("center", "boundary"):
        for side, px in zip(DEFAULT_SIDES, scale_sides(DEFAULT_SIDES, args.size)):
            t, f = timed(lambda px=px, mode=mode: occlusion_predictions(model, pixels, [px], mode))
            points.append({"test": f"occlusion {mode}", "point": f"side {side}", "seconds": t, "forward_s": f})
    for r in DEFAULT_MIXUP_RATIOS:
        t, f = timed(lambda r=r: mixup_predictions(model, pixels, other, [r]))
        points.append({"test": "inbetween mixup", "point": f"lambda {r:g}", "seconds": t, "forward_s": f})
    for side, px in zip(DEFAULT_SIDES, scale_sides(DEFAULT_SIDES, args.size)):
        t, f = timed(lambda px=px: cutmix_predictions(model, pixels, other, [px]))
        points.append({"test": "inbetween cutmix", "point": f"side {side}", "seconds": t, "forward_s": f})
    for pt in points:
        pt["images_per_s"] = n / pt["seconds"]
        pt["ratio_to_forward"] = pt["seconds"] / pt["forward_s"]
    curve = [pt for pt in points if pt["test"] != "fgsm"]
    worst = max(curve, key=lambda pt: pt["ratio_to_forward"])
    forward_s = min(forwards)
    out = {"arch": args.arch, "image_size": args.size, "batch": n, "threads": args.threads, "device": str(device),
           "reps": args.reps, "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
           "decode_s_per_image": decode_s / n, "forward_s": forward_s, "forward_images_per_s": n / forward_s,
           "fgsm_ratio_to_forward": points[0]["ratio_to_forward"],
           "worst_curve_point": {k: worst[k] for k in ("test", "point", "ratio_to_forward")},
           "goal_curve_point_ratio": GOAL, "goal_met": worst["ratio_to_forward"] <= GOAL, "points": points}
    atomic_write_json(args.out, out)
    print(f"{args.arch} at {args.size} px, batch {n}, {args.threads} threads on {device}: plain forward "
          f"{n / forward_s:.1f} images/s; decoding {1000 * decode_s / n:.1f} ms/image, paid once per batch")
    print(f"{'test':<18} {'point':<11} {'images/s':>9} {'x forward':>10}")
    for pt in points:
        print(f"{pt['test']:<18} {pt['point']:<11} {pt['images_per_s']:>9.1f} {pt['ratio_to_forward']:>10.3f}")
    print(f"worst curve point: {worst['test']} {worst['point']} at {worst['ratio_to_forward']:.3f}x the plain forward "
          f"(goal <= {GOAL}x: {'met' if out['goal_met'] else 'NOT met'}); FGSM {out['fgsm_ratio_to_forward']:.2f}x "
          f"-> {args.out}")


if __name__ == "__main__":
    main()
