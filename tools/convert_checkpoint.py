#!/usr/bin/env python
"""Convert a backbone checkpoint (CutMix-PyTorch, torchvision, timm, mmengine/mmdet/mmpretrain, wsolevaluation,
cutmix_transfer) into an mmdet backbone checkpoint or a plain torchvision state dict.

    python tools/convert_checkpoint.py cutmix_resnet50.pth.tar work_dirs/r50_cutmix_mmdet.pth --to mmdet
    python tools/convert_checkpoint.py epoch_300.pth r50_tv.pth --to torchvision --arch resnet50

The mmdet file is {'state_dict': backbone weights without the fc head, 'meta': source info}; use it as
`backbone.init_cfg = dict(type='Pretrained', checkpoint=<file>)`. Loading is safe (weights_only with an
allow-list); a file that needs arbitrary unpickling is refused unless --trust-checkpoint is given.
"""
from __future__ import annotations

import argparse
import sys

import torch

from cutmix_transfer.checkpoints import ARCHS, convert_checkpoint
from cutmix_transfer.cli import main_guard, setup_logging


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="checkpoint to read")
    p.add_argument("dst", help="file to write (atomically)")
    p.add_argument("--to", required=True, choices=["mmdet", "torchvision"], help="output format")
    p.add_argument("--arch", choices=ARCHS, default=None, help="expected arch (default: inferred from the weights)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow arbitrary unpickling of SRC (runs code from the file: only for files you trust)")
    p.add_argument("--seed", type=int, default=0, help="random seed (conversion itself is deterministic)")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


@main_guard
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    torch.manual_seed(args.seed)
    loaded = convert_checkpoint(args.src, args.dst, to=args.to, arch=args.arch, trust=args.trust_checkpoint)
    head = f"fc with {loaded.num_classes} classes" if loaded.has_fc else "no fc head"
    print(f"{args.src}: {loaded.source_format} {loaded.arch} ({head}), sha256 {loaded.sha256[:12]} "
          f"-> {args.dst} ({args.to})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
