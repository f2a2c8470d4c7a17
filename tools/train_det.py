"""Fine-tune an MMDetection detector on Pascal VOC from a backbone checkpoint (CutMix, Mixup, Cutout, plain).

    python tools/train_det.py configs/voc_faster_rcnn_cutmix.py --backbone checkpoints/resnet50_cutmix.pth

The checkpoint is loaded safely in any supported format, converted to <work_dir>/backbone_mmdet.pth and set as
the backbone's Pretrained init; the config follows its depth; the log lists the keys loaded and left out.
"""
from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import add_run_args, main_guard, setup_logging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", help="detection config, e.g. configs/voc_faster_rcnn_cutmix.py")
    p.add_argument("--backbone", metavar="CKPT",
                   help="backbone checkpoint (overrides the config's backbone_checkpoint)")
    p.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config name>)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="resume: alone, from the work dir's last checkpoint; with a path, from that file")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument("--data-root", help="VOCdevkit folder (replaces the data_root of every VOC dataset)")
    add_run_args(p, trust_help="the backbone checkpoint")
    return p.parse_args(argv)


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from cutmix_transfer.detection import train_detector

    work_dir = train_detector(args.config, backbone=args.backbone, work_dir=args.work_dir,
                              cfg_options=args.cfg_options, resume=args.resume, amp=args.amp, seed=args.seed,
                              trust=args.trust_checkpoint, launcher=args.launcher, data_root=args.data_root)
    print(f"trained: checkpoints and logs in {work_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
