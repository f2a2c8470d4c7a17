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

from cutmix_transfer.cli import add_run_args, main_guard, setup_logging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", help="classification config, e.g. configs/cls/demo_cutmix.py")
    p.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the work dir's last checkpoint (starts fresh when there is none)")
    add_run_args(p, seed_default=None, seed_help="random seed (default: the config's randomness.seed)",
                 trust_help="the model.pretrained checkpoint")
    return p.parse_args(argv)


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from cutmix_transfer.classification import train_classifier

    out = train_classifier(args.config, work_dir=args.work_dir, cfg_options=args.cfg_options, resume=args.resume,
                           seed=args.seed, launcher=args.launcher, trust_checkpoint=args.trust_checkpoint)
    if out["record"]:
        errs = ", ".join(f"{k} {v:.2f}%" for k, v in out["metrics"].items())
        print(f"trained: {errs}; checkpoint {out['checkpoint']}; record {out['record']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
