#!/usr/bin/env python
"""A checkpoint's own classification numbers: top-1 / top-5 error as CutMix-PyTorch's test.py, NLL, ECE (15 bins),
the RMS calibration error of hendrycks' calib_err, optionally temperature scaling (docs/classification_protocol.md).

    python tools/test_cls.py --backbone ResNet50_cutmix.pth.tar --dataset imagenet --data-root data/ILSVRC
    python tools/test_cls.py --backbone pyramidnet200_cutmix.pth.tar --dataset cifar100 --data-root data/cifar \\
        --fit-temperature 0.5
    python tools/test_cls.py --backbone resnet56-4bfd9763.th --dataset cifar10 \\
        --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225      # akamaster's CIFAR ResNets: ImageNet statistics

Inputs: ImageNet val resized to 256 and centre-cropped to 224 (--image-size S: round(S / 0.875), S); CIFAR at 32 px
as it is; CUB's test split resized to S x S. Normalisation: --mean / --std, else the checkpoint's meta (this
project's checkpoints record their training statistics), else the dataset's (ImageNet's; CIFAR: CutMix-PyTorch's).
Writes <out>/results.json, per_image.csv, logits.npz and reliability.png. Under torchrun the images are sharded and
the numbers equal one process's.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import add_evaluator_args, call_with_options, main_guard, parse_tool_args
from cutmix_transfer.clseval import DATASETS, ClsEvalConfig, evaluate_classification


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_evaluator_args(
        p,
        batch_size=64,
        workers=4,
        image_size_help="network input side (default: 224; CIFAR 32, the only size it takes)",
        image_size_default=None,
        skip_unreadable_help="leave unreadable images out (listed in results.json)",
    )
    p.add_argument("--dataset", required=True, choices=DATASETS, help="the test split to classify")
    p.add_argument(
        "--data-root",
        default=None,
        help="the dataset folder (default data/ILSVRC, data/cifar, data/CUB_200_2011): ILSVRC (val/<wnid>/ "
        "folders or the Kaggle layout), the folder holding cifar-100-python/ or cifar-10-batches-py/, CUB_200_2011",
    )
    p.add_argument(
        "--fit-temperature",
        type=float,
        default=None,
        metavar="F",
        help="fit temperature scaling on a seeded share F of the images (0 < F < 1), report the rest before/after",
    )
    p.add_argument("--out", default=None, help="output folder (default work_dirs/test_cls/<checkpoint>_<dataset>)")
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    result = evaluate_classification(call_with_options(ClsEvalConfig, args))
    rec, m = result.record, result.metrics
    print(f"{rec['checkpoint']['path']} ({rec['arch']}) on {rec['dataset']} {rec['split']}, {rec['num_images']} images")
    names = [k for k in ("top1_err", "top5_err", "nll", "ece", "rms_calib_err") if k in m]
    print("  ".join(f"{k:>13}" for k in names))
    print("  ".join(f"{m[k]:13.4f}" for k in names))
    ts = rec.get("temperature_scaling")
    if ts:
        print(f"temperature {ts['temperature']:.4f} fitted on {ts['num_fit']} images; held-out {ts['num_held_out']}:")
        for when in ("held_out_before", "held_out_after"):
            print(f"  {when[9:]:>6}: " + ", ".join(f"{k} {v:.4f}" for k, v in ts[when].items()))
    print(f"-> {result.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
