"""Evaluate a trained detector on VOC07 test (11-point mAP, per-class AP) and write a result record.

    python tools/test_det.py configs/voc_faster_rcnn_cutmix.py work_dirs/voc_faster_rcnn_cutmix/epoch_4.pth

The record (<out>/results.json, kind 'detection') carries the BACKBONE checkpoint's sha256, read from the
detector checkpoint that tools/train_det.py saved, so the report lines it up with the same pretraining.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import add_run_args, call_with_options, main_guard, parse_tool_args
from cutmix_transfer.detection import evaluate_detector, summary_lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", help="the config the detector was trained with")
    p.add_argument("checkpoint", help="detector checkpoint written by tools/train_det.py")
    p.add_argument("--out", help="folder for results.json and logs (default: next to CHECKPOINT)")
    p.add_argument(
        "--eval-mode",
        choices=["11points", "area"],
        default=None,
        help="AP: '11points' (VOC07, the paper's; the configs' default) or 'area' (VOC2012 style)",
    )
    p.add_argument(
        "--backbone",
        metavar="CKPT",
        help="the backbone the detector started from (for a checkpoint not from train_det.py)",
    )
    p.add_argument("--data-root", help="VOCdevkit folder (replaces the data_root of every VOC dataset)")
    add_run_args(p)
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    outcome = call_with_options(evaluate_detector, args, trust=args.trust_checkpoint)
    print("\n".join(summary_lines(outcome)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
