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

from cutmix_transfer.checkpoints import convert_checkpoint
from cutmix_transfer.cli import add_arch_arg, add_trust_arg, add_verbose_arg, main_guard, parse_tool_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", help="checkpoint to read")
    p.add_argument("dst", help="file to write (atomically)")
    p.add_argument("--to", required=True, choices=["mmdet", "torchvision"], help="output format")
    add_arch_arg(p)
    add_trust_arg(p, "SRC")
    add_verbose_arg(p)
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    loaded = convert_checkpoint(args.src, args.dst, to=args.to, arch=args.arch, trust=args.trust_checkpoint)
    head = f"fc with {loaded.num_classes} classes" if loaded.has_fc else "no fc head"
    print(
        f"{args.src}: {loaded.source_format} {loaded.arch} ({head}), sha256 {loaded.sha256[:12]} "
        f"-> {args.dst} ({args.to})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
