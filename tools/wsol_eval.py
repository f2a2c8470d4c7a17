#!/usr/bin/env python
"""Weakly-supervised localization of one classifier checkpoint, or of saved score maps from any method: MaxBoxAcc,
MaxBoxAccV2, PxAP, and the CutMix paper's top-1 / GT-known localization, with clovaai/wsolevaluation's semantics
(docs/wsol_protocol.md).

    python tools/wsol_eval.py --backbone work_dirs/cub_cutmix/epoch_30.pth --dataset cub --vis 8
    python tools/wsol_eval.py --backbone r50_imagenet.pth --dataset imagenet --data-root data/ILSVRC \\
        --cam-curve-interval 0.001 --save-cams
    python tools/wsol_eval.py --scoremaps work_dirs/wsol/epoch_30_cub/cams.npz --dataset cub   # no checkpoint
    python tools/wsol_eval.py --scoremaps scoremaps/ --dataset openimages --data-root data/OpenImages \\
        --metadata metadata/OpenImages                        # wsolevaluation's <image_id>.npy layout, PxAP
    torchrun --nproc_per_node 4 tools/wsol_eval.py --backbone ckpt.pth --dataset cub    # sharded, same numbers

Writes <out>/results.json (metrics in percent, best thresholds, per-threshold curves, checkpoint or maps sha256),
<out>/per_image.csv, with --save-cams <out>/cams.npz (image_ids, cams N x 224 x 224 float32: the scored maps, and
the source checkpoint), with --vis N <out>/vis/ (overlays of the first N images, best/worst grid, curves).
The checkpoint must be a classifier of the dataset's classes (CUB 200, ImageNet 1000, OpenImages 100). Saved maps
give the localization metrics only (top-1 numbers need a checkpoint); OpenImages has masks only (PxAP). A
checkpoint's inputs are normalised as trained: --mean M M M --std S S S, else its meta's, else ImageNet's.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import add_cam_arg, add_evaluator_args, call_with_options, main_guard, parse_tool_args
from cutmix_transfer.datasets.wsol_data import DATASETS
from cutmix_transfer.wsol.evaluate import WSOLEvalConfig, default_workers, evaluate_wsol
from cutmix_transfer.wsol.outputs import metrics_table


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_evaluator_args(
        p,
        batch_size=32,
        workers=default_workers(),
        workers_default_text="4, at most the usable cores",
        image_size_help="network input side (default 224, the protocol); boxes, masks and CAMs stay at 224",
        backbone_required=False,
    )
    add_cam_arg(p)
    p.add_argument(
        "--scoremaps",
        default=None,
        metavar="PATH",
        help="score saved maps instead of a checkpoint: a cams.npz (--save-cams) or wsolevaluation's "
        "scoremap_root with <image_id>.npy per image",
    )
    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    p.add_argument(
        "--data-root",
        default=None,
        help="dataset folder (default data/CUB_200_2011, data/ILSVRC or data/OpenImages); with --metadata, "
        "the folder the image ids are relative to (or the dataset folder above it)",
    )
    p.add_argument(
        "--metadata",
        default=None,
        help="wsolevaluation metadata folder (metadata/CUB or metadata/CUB/test) instead of the raw layout; "
        "OpenImages: metadata/OpenImages (default <data-root>/metadata/OpenImages)",
    )
    p.add_argument("--split", default=None, help="test|val|train (default: val for ImageNet, else test)")
    p.add_argument("--iou", type=int, nargs="+", default=[30, 50, 70], help="IoU thresholds in percent (with 50)")
    p.add_argument("--cam-curve-interval", type=float, default=0.01, help="CAM threshold step (0.001: finer)")
    p.add_argument(
        "--fixed-threshold",
        type=float,
        default=0.2,
        help="CAM threshold of the paper's top-1 / GT-known localization (CAM paper: 0.2)",
    )
    p.add_argument("--out", default=None, help="output folder (default work_dirs/wsol/<checkpoint>_<dataset>)")
    p.add_argument("--save-cams", action="store_true", help="write cams.npz with the scored maps")
    p.add_argument("--vis", type=int, default=0, metavar="N", help="write figures for N images and N best/worst")
    p.add_argument(
        "--box-workers",
        type=int,
        default=-1,
        help="processes extracting boxes alongside the forward pass (-1: auto, 0: none)",
    )
    p.add_argument(
        "--standard-form",
        dest="wsol_form",
        action="store_false",
        help="keep the ResNet's stride-2 layer4 (default: wsolevaluation's stride-1 WSOL form)",
    )
    p.add_argument("--large-feature-map", action="store_true", help="also layer3 stride 1 (wsolevaluation option)")
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    cfg = call_with_options(WSOLEvalConfig, args, iou_thresholds=tuple(args.iou), input_size=args.image_size)
    result = evaluate_wsol(cfg)
    if result.record.get("world_size", 1) == 1 or result.files:
        print(metrics_table(result.metrics, result.record.get("not_reported", {})))
        print(f"results: {result.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
