"""Fine-tune an MMDetection detector on Pascal VOC from a backbone checkpoint (CutMix, Mixup, Cutout, plain).

    python tools/train_det.py configs/voc_faster_rcnn_cutmix.py --backbone checkpoints/resnet50_cutmix.pth

The checkpoint is loaded safely in any supported format, converted to <work_dir>/backbone_mmdet.pth and set as
the backbone's Pretrained init; the config follows its depth; the log lists the keys loaded and left out.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import add_train_args, main_guard, options_for, parse_tool_args
from cutmix_transfer.detection import prepare_training, train_detector


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_train_args(
        p,
        "detection config, e.g. configs/voc_faster_rcnn_cutmix.py",
        resume_from_file=True,
        seed_default=0,
        seed_help="random seed",
    )
    p.add_argument(
        "--backbone", metavar="CKPT", help="backbone checkpoint (overrides the config's backbone_checkpoint)"
    )
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument("--data-root", help="VOCdevkit folder (replaces the data_root of every VOC dataset)")
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    # train_detector passes its options on to prepare_training
    work_dir = train_detector(**options_for(prepare_training, args, trust=args.trust_checkpoint))
    print(f"trained: checkpoints and logs in {work_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
