#!/usr/bin/env python
"""Pretrain a classifier with CutMix / Mixup / Cutout / plain on mmengine's Runner.

    python tools/train_cls.py configs/cls/demo_cutmix.py [--work-dir DIR] [--cfg-options k=v ...] [--resume]
    tools/dist_train.sh configs/cls/imagenet_resnet50_cutmix.py 4          # DDP through torchrun

Checkpoints land in the work dir (default work_dirs/<config name>/epoch_N.pth) with the training method in their
meta; tools/wsol_eval.py and tools/train_det.py read them. The last validation's top-1/top-5 error is written to
<work_dir>/results.json for tools/report.py.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.classification import train_classifier
from cutmix_transfer.cli import add_train_args, call_with_options, main_guard, parse_tool_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_train_args(
        p, "classification config, e.g. configs/cls/demo_cutmix.py", trust_help="the model.pretrained checkpoint"
    )
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    out = call_with_options(train_classifier, args)
    if out["record"]:
        errs = ", ".join(f"{k} {v:.2f}%" for k, v in out["metrics"].items())
        print(f"trained: {errs}; checkpoint {out['checkpoint']}; record {out['record']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
