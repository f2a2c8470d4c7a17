#!/usr/bin/env python
"""Corruption robustness of one classifier checkpoint on ImageNet-C, CIFAR-10-C or CIFAR-100-C as released: top-1
error per corruption x severity, CE and mCE (AlexNet-normalised), relative mCE, the unnormalised mean error, and
CIFAR-C's mean error (docs/corruption_protocol.md).

    python tools/corruption_eval.py --backbone resnet50_cutmix.pth --dataset imagenet \\
        --corruption-root data/ImageNet-C --data-root data/imagenet/ILSVRC
    python tools/corruption_eval.py --backbone pyramidnet200_cutmix.pth.tar --dataset cifar100 \\
        --corruption-root data/cifar/CIFAR-100-C --data-root data/cifar
    torchrun --nproc_per_node 4 tools/corruption_eval.py --backbone ckpt.pth --corruption-root data/ImageNet-C

--corruption-root: ImageNet-C's <root>/<corruption>/<1-5>/<wnid>/*.JPEG, or CIFAR-C's <root>/<corruption>.npy +
labels.npy; any subset of the corruptions may be there (the missing ones are named). --data-root: the clean set (the
Kaggle ILSVRC folder, or the folder of cifar-100-python/ / cifar-10-batches-py/), for the clean error and the
relative mCE; without it neither is reported. Writes <out>/results.json, per_image.csv and predictions.npz.
"""

from __future__ import annotations

import argparse
import os
import sys

from cutmix_transfer.cli import add_evaluator_args, call_with_options, main_guard, parse_tool_args
from cutmix_transfer.corruptions import CorruptionEvalConfig, evaluate_corruptions
from cutmix_transfer.corruptions.data import C_PREPROCESS, DATASETS
from cutmix_transfer.datasets.corruptions import ALL_CORRUPTIONS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_evaluator_args(
        p,
        batch_size=64,
        workers=4,
        image_size_help="network input side (default 224; CIFAR 32)",
        image_size_default=None,
        seed_help="seed of the --max-images subset and of torch (default 0)",
        skip_unreadable_help="leave out unreadable images and broken corruption x severity sets (listed in "
        "results.json)",
    )
    p.add_argument("--dataset", default="imagenet", choices=DATASETS, help="the benchmark (default imagenet)")
    p.add_argument("--corruption-root", required=True, help="the corruption release's folder (see above)")
    p.add_argument("--data-root", default=None, help="the clean set, for the clean error and the relative mCE")
    p.add_argument(
        "--corruptions", nargs="+", default=[], metavar="NAME", help=f"a subset of: {' '.join(ALL_CORRUPTIONS)}"
    )
    p.add_argument("--severities", nargs="+", type=int, default=[1, 2, 3, 4, 5], help="a subset of 1 2 3 4 5")
    p.add_argument("--max-images", type=int, default=None, help="a seeded subset of the clean images (default all)")
    p.add_argument(
        "--c-preprocess",
        default="center-crop",
        metavar="{" + ",".join(C_PREPROCESS) + "}",
        help="center-crop: centre crop at the input side (hendrycks' test.py; the identity for 224 px files); "
        "resize-crop: resize to side / 0.875 then centre crop (default center-crop)",
    )
    p.add_argument("--out", default=None, help="output folder (default work_dirs/corruption/<checkpoint>_<dataset>)")
    return p


def _fmt(v) -> str:
    return "-" if v is None else f"{v:6.2f}"


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    cfg = call_with_options(
        CorruptionEvalConfig,
        args,
        corruptions=tuple(args.corruptions),
        severities=tuple(args.severities),
        mean=tuple(args.mean) if args.mean else None,
        std=tuple(args.std) if args.std else None,
    )
    result = evaluate_corruptions(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun rank 0 prints
        return 0
    rec = result.record
    summary = rec["summary"]
    width = max(len(c) for c in ["corruption", *summary["corruptions"]])
    print(f"{'corruption':<{width}}  " + "  ".join(f"{'s' + str(s):>6}" for s in range(1, 6)) + "    mean      CE")
    for c in summary["corruptions"]:
        v = summary["per_corruption"][c]
        errs = [v["errors"].get(str(s)) for s in range(1, 6)]
        print(f"{c:<{width}}  " + "  ".join(_fmt(e) for e in errs) + f"  {_fmt(v['mean_err'])}  {_fmt(v['ce'])}")
    for key in ("mce", "relative_mce") if args.dataset == "imagenet" else ("augmix_mean_err",):
        if summary.get(key):
            print(f"{summary[key]['label']}: {summary[key]['value']:.2f}")
    print(f"unnormalised mean error over {len(summary['corruptions'])} corruptions: {summary['mean_err']:.2f}")
    if rec["clean_err"] is not None:
        print(f"clean top-1 error: {rec['clean_err']:.2f}")
    if rec["missing_corruptions"]:
        print(f"missing corruptions: {', '.join(rec['missing_corruptions'])}")
    if rec["skipped_sets"]["count"]:
        print(f"skipped sets: {', '.join(s['set'] for s in rec['skipped_sets']['sets'])}")
    print(f"-> {result.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
