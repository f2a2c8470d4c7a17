"""Time the WSOL evaluator: backbone forward (CAMs included) against everything else, on generated CUB-layout
data with a randomly initialised ResNet-50 at 224 on CPU. Writes benchmarks/results/wsol_eval.json.

    python benchmarks/wsol_eval.py [--images-per-class 4] [--classes 10] [--threads 1] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from _common import machine_name, parse_args, write_result

from cutmix_transfer.backbones import build_model
from cutmix_transfer.datasets.demo import make_demo_data
from cutmix_transfer.wsol.evaluate import WSOLEvalConfig, evaluate_wsol


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images-per-class", type=int, default=4)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--arch", default="resnet50")
    args = parse_args(p, "wsol_eval", threads=1, seed=False)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_demo_data(
            tmp,
            seed=0,
            image_size=96,
            per_class=1,
            num_classes=args.classes,
            test_per_class=args.images_per_class,
            layouts=("cub",),
            progress=False,
        )
        torch.manual_seed(0)
        ckpt = tmp / f"{args.arch}.pth"
        torch.save(build_model(args.arch, args.classes).state_dict(), ckpt)
        t0 = time.perf_counter()
        res = evaluate_wsol(
            WSOLEvalConfig(
                backbone=ckpt,
                dataset="cub",
                data_root=tmp / "CUB_200_2011",
                out=tmp / "out",
                workers=0,
                box_workers=0,
                batch_size=8,
                cam_curve_interval=args.interval,
                device="cpu",
                progress=False,
            )
        )
        wall = time.perf_counter() - t0
    t = res.record["timing"]
    loop = t["forward_s"] + t["boxes_s"] + t["masks_s"] + t["data_wait_s"]
    out = {
        "arch": args.arch,
        "images": res.record["num_images"],
        "threads": args.threads,
        "cam_curve_interval": args.interval,
        "device": "cpu",
        "machine": machine_name(),
        **t,
        "wall_s": wall,
        "metric_fraction_of_loop": (t["boxes_s"] + t["masks_s"]) / loop,
        "non_forward_fraction_of_loop": (loop - t["forward_s"]) / loop,
        "forward_ms_per_image": 1000 * t["forward_s"] / res.record["num_images"],
        "boxes_ms_per_image": 1000 * t["boxes_s"] / res.record["num_images"],
        "masks_ms_per_image": 1000 * t["masks_s"] / res.record["num_images"],
    }
    print(json.dumps(out, indent=2))
    write_result(args.out, out)


if __name__ == "__main__":
    main()
