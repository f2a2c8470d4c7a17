#!/usr/bin/env python
"""Robustness of one classifier checkpoint, as the CutMix paper's section 4.4 (Table 11, Figure 5): top-1 under
an FGSM white-box attack, top-1 error under centre / boundary occlusion, and predictions on Mixup / CutMix
in-between-class samples (docs/robustness_protocol.md).

    python tools/robustness_eval.py --backbone resnet50_cutmix.pth.tar --dataset imagenet
    python tools/robustness_eval.py --backbone ckpt.pth --dataset imagenet --data-root data/demo/ILSVRC \\
        --image-size 96 --tests fgsm occlusion --eps 0.5 2 8 --hole-sizes 0 56 112 168 224
    torchrun --nproc_per_node 4 tools/robustness_eval.py --backbone ckpt.pth --dataset imagenet   # same numbers

Writes <out>/results.json (clean top-1, FGSM top-1 per eps, every curve; the checkpoint's sha256),
<out>/per_image.csv (clean and FGSM prediction per image), <out>/predictions.npz (every prediction of every
test) and <out>/curves.png (one panel per test). The checkpoint must classify the dataset's classes
(ImageNet 1000, CUB 200, the demo's 10); it is built in the form it was trained in (its meta), or --wsol, and fed
inputs normalised as trained: --mean M M M --std S S S, else its meta's, else ImageNet's (the attacks' 'normalized'
step and the 'mean' occlusion fill use the same statistics).
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import add_evaluator_args, call_with_options, main_guard, parse_tool_args
from cutmix_transfer.robustness import DEFAULT_MIXUP_RATIOS, DEFAULT_SIDES, TESTS, RobustnessConfig, evaluate_robustness
from cutmix_transfer.robustness.evaluate import DEFAULT_PAIRS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_evaluator_args(
        p,
        batch_size=64,
        workers=4,
        image_size_help="network input side S: resize S/0.875, centre crop S (default "
        "224; the demo's 96); hole sizes scale with it",
    )
    p.add_argument("--dataset", required=True, choices=["imagenet", "cub"], help="ImageNet val or CUB test")
    p.add_argument("--data-root", default=None, help="dataset folder (default data/ILSVRC or data/CUB_200_2011)")
    p.add_argument("--tests", nargs="+", default=list(TESTS), choices=TESTS, help="which tests to run (all)")
    # the grids: one or more values each (nargs="+")
    grids = (
        ("--eps", float, [8.0], "FGSM eps in 1/255 units, each in (0, 255] (default 8: Table 11)"),
        ("--hole-sizes", int, list(DEFAULT_SIDES), "occlusion square sides in the 224 frame (default 0 16 ... 224)"),
        (
            "--mixup-ratios",
            float,
            list(DEFAULT_MIXUP_RATIOS),
            "Mixup lambda, the share of the first image x_A: lam x_A + (1 - lam) x_B (default 0 0.1 ... 1)",
        ),
        (
            "--cutmix-sides",
            int,
            list(DEFAULT_SIDES),
            "sides of the centred square of x_B pasted into x_A, 224 frame (default 0 16 ... 224; "
            "lambda = 1 - s^2/224^2)",
        ),
    )
    for flag, kind, default, text in grids:
        p.add_argument(flag, type=kind, nargs="+", default=default, help=text)
    p.add_argument(
        "--pairs",
        type=int,
        default=DEFAULT_PAIRS,
        help=f"in-between pairs (default {DEFAULT_PAIRS:,}, the paper's, Appendix E.1). Cost: one forward per "
        "pair and grid point, 26 per pair on the default grids (11 Mixup ratios + 15 CutMix sides): about 1.3M "
        "image forwards per checkpoint, plus two image decodes per pair",
    )
    p.add_argument(
        "--fgsm-space",
        default="pixels",
        choices=["pixels", "normalized"],
        help="where eps applies: pixels (default): on [0, 1] pixels, clipped to [0, 1]; normalized: on the "
        "normalised network input, not clipped (8/255 there is about 1.8/255 in pixels)",
    )
    p.add_argument(
        "--occlusion-fill",
        default="black",
        choices=["black", "mean"],
        help="what occluded pixels become: black (default): pixel 0; mean: 0 in the normalised input, the "
        "normalisation's mean colour (as Cutout's code)",
    )
    p.add_argument(
        "--max-images",
        type=int,
        default=None,
        help="evaluate a seeded random subset of this many images (default: the whole split)",
    )
    form = p.add_mutually_exclusive_group()
    form.add_argument(
        "--wsol",
        dest="wsol_form",
        action="store_const",
        const=True,
        help="build the stride-1 WSOL form whatever the meta says",
    )
    form.add_argument(
        "--standard-form",
        dest="wsol_form",
        action="store_const",
        const=False,
        help="build the standard torchvision form whatever the meta says",
    )
    p.add_argument("--out", default=None, help="output folder (default work_dirs/robustness/<checkpoint>_<dataset>)")
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    cfg = call_with_options(RobustnessConfig, args)
    result = evaluate_robustness(cfg)
    if result.files:
        print(" ".join(f"{k}={v:.2f}" for k, v in result.metrics.items()) + f" -> {result.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
