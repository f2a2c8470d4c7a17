"""Fine-tune an MMDetection detector on Pascal VOC from a backbone checkpoint (CutMix, Mixup, Cutout, plain).

    python tools/train_det.py configs/voc_faster_rcnn_cutmix.py --backbone checkpoints/resnet50_cutmix.pth

The checkpoint is loaded safely in any supported format, converted to <work_dir>/backbone_mmdet.pth and set as
the backbone's Pretrained init; the config follows its depth; the log lists the keys loaded and left out.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import add_train_args, call_with_options, main_guard, options_for, parse_tool_args
from cutmix_transfer.detection import evaluate_detector, prepare_training, summary_lines, train_detector
from cutmix_transfer.errors import CheckpointError
from cutmix_transfer.runner import last_checkpoint


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
    p.add_argument(
        "--test",
        action="store_true",
        help="then test the last checkpoint on the config's test set in this process: <work-dir>/test/, the same "
        "record as tools/test_det.py CONFIG CHECKPOINT --out <work-dir>/test, without a second start-up",
    )
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    # train_detector passes its options on to prepare_training
    work_dir = train_detector(**options_for(prepare_training, args, trust=args.trust_checkpoint))
    print(f"trained: checkpoints and logs in {work_dir}")
    if args.test:
        checkpoint = last_checkpoint(work_dir)
        if checkpoint is None:
            raise CheckpointError(f"{work_dir}: no last_checkpoint to test; test a checkpoint with tools/test_det.py")
        outcome = call_with_options(  # seed 0: test_det's default (inference draws nothing from it)
            evaluate_detector, args, checkpoint=checkpoint, out=work_dir / "test", seed=0, trust=args.trust_checkpoint
        )
        print("\n".join(summary_lines(outcome)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
