#!/usr/bin/env python
"""Caption a COCO split with a trained NIC checkpoint and score it (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D).

    python tools/test_caption.py configs/caption/nic_demo.py work_dirs/nic_demo/epoch_8.pth --out DIR

Writes <out>/results.json (a 'captioning' record in percent, linked to the backbone checkpoint's sha256),
<out>/captions.json and <out>/samples.png. SPICE is reported as unavailable (it needs a download).
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.captioning import evaluate_captioner
from cutmix_transfer.cli import add_run_args, call_with_options, main_guard, parse_tool_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", help="the captioning config the checkpoint was trained with")
    p.add_argument("checkpoint", help="a checkpoint written by tools/train_caption.py")
    p.add_argument("--out", help="output folder (default: next to the checkpoint, test_<name>_<split>)")
    p.add_argument("--split", default="test", help="Karpathy split: test (default), val, train; COCO json: val, train")
    p.add_argument("--beam", type=int, default=3, help="beam size (1 = greedy decoding)")
    p.add_argument("--data-root", help="the COCO folder (default: the config's data_root)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (its Java process needs about 1.5 GB)")
    add_run_args(p, seed_help="seed (the figure's sample choice)", launcher=False)
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    scorers = ("bleu", "rouge", "cider") if args.no_meteor else ("bleu", "meteor", "rouge", "cider")
    res = call_with_options(evaluate_captioner, args, beam_size=args.beam, trust=args.trust_checkpoint, scorers=scorers)
    m = res.record["metrics"]
    print(
        f"{res.record['num_images']} images, beam {args.beam}: "
        + ", ".join(f"{k} {v:.1f}" for k, v in m.items())
        + f"; SPICE unavailable offline; record {res.path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
