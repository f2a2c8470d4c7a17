#!/usr/bin/env python
"""Fine-tune NIC (Show and Tell) on COCO captions with any backbone checkpoint as the encoder, on mmengine's Runner.

    python tools/train_caption.py configs/caption/nic_demo.py --backbone work_dirs/demo_cutmix/epoch_7.pth
    python tools/train_caption.py configs/caption/nic_coco_karpathy.py --backbone resnet50_cutmix.pth.tar

The vocabulary (<work_dir>/vocab.json) is built from the training captions; checkpoints land in the work dir
(default work_dirs/<config name>) with the vocabulary and the backbone's sha256 in their meta, for
tools/test_caption.py.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.captioning import train_captioner
from cutmix_transfer.cli import add_train_args, call_with_options, main_guard, parse_tool_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_train_args(p, "captioning config, e.g. configs/caption/nic_demo.py")
    p.add_argument(
        "--backbone",
        help="encoder checkpoint (CutMix-PyTorch, torchvision, tools/train_cls.py, ...); "
        "its arch replaces the config's",
    )
    p.add_argument("--freeze-encoder", action="store_true", help="train the decoder only (encoder weights fixed)")
    p.add_argument(
        "--data-root",
        help="the COCO folder (annotations/, train2014/, val2014/, dataset_coco.json); default: the config's data_root",
    )
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    out = call_with_options(train_captioner, args)
    scores = ", ".join(f"{k} {v:.1f}" for k, v in out["metrics"].items()) or "no validation"
    print(f"trained: {scores}; vocabulary {out['vocab_size']} tokens; checkpoint {out['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
