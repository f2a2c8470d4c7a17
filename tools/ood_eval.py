#!/usr/bin/env python
"""Out-of-distribution detection with one CIFAR classifier checkpoint: TNR at 95% TPR, AUROC, detection accuracy,
AUPR-in / -out per OOD set and their mean, in-distribution positive (docs/ood_protocol.md).

    python tools/ood_eval.py --backbone pyramidnet200_cutmix.pth.tar --in-dataset cifar100 --data-root data/cifar \\
        --ood data/ood/Imagenet data/ood/Imagenet_resize data/ood/LSUN data/ood/LSUN_resize data/ood/iSUN \\
        uniform gaussian
    python tools/ood_eval.py --backbone ckpt.pth --ood data/ood/LSUN --detector odin --temperature 1000 --epsilon 0.0014
    torchrun --nproc_per_node 2 tools/ood_eval.py --backbone ckpt.pth --ood data/ood/LSUN uniform   # same numbers

--data-root is the folder holding cifar-100-python/ (as torchvision's CIFAR100). --ood takes folders of images in
ODIN's release layout (read recursively, sorted; images that are not 32x32 are resized) and the generated sets
uniform / gaussian (ODIN's definitions, --noise-count images each, from --seed). As ODIN's code ran it (it leaves
out the first 1,000 images of every set, used for its tuning, and scores 9,000 per set, iSUN 7,925; its noise
loop runs 10,000 times and skips the same first 1,000): --skip-first 1000 --metrics-as odin --score-dtype float32.
Writes <out>/results.json,
<out>/scores.npz (in_distribution + one array per OOD set; higher = more in-distribution), <out>/per_image/*.csv
and <out>/ood.png. The checkpoint must be a classifier of the dataset's classes (CIFAR-100: 100). Normalisation, of
the in-distribution and the OOD images alike: --mean M M M --std S S S, else the checkpoint's meta, else
CutMix-PyTorch's CIFAR statistics (akamaster's CIFAR ResNets: --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225).
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import add_evaluator_args, call_with_options, main_guard, parse_tool_args
from cutmix_transfer.ood import DETECTORS, METRICS, OODEvalConfig, evaluate_ood
from cutmix_transfer.ood.data import DEFAULT_NOISE_COUNT, IN_DATASETS
from cutmix_transfer.ood.metrics import METRICS_AS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_evaluator_args(
        p,
        batch_size=128,
        workers=0,
        seed_help="seed of the noise sets and of torch (default 0)",
        skip_unreadable_help="leave unreadable OOD images out (listed in results.json) instead of failing",
    )
    p.add_argument(
        "--in-dataset",
        default="cifar100",
        choices=list(IN_DATASETS),
        help="in-distribution test set (default cifar100)",
    )
    p.add_argument("--data-root", default=None, help="folder holding cifar-100-python/ (default data/cifar)")
    p.add_argument(
        "--ood",
        nargs="+",
        required=True,
        metavar="DIR_OR_NAME",
        help="OOD sets: folders of images (ODIN's Imagenet, Imagenet_resize, LSUN, LSUN_resize, iSUN) "
        "and/or uniform, gaussian",
    )
    p.add_argument(
        "--detector",
        default="msp",
        choices=sorted(DETECTORS),
        help="msp: max softmax, the CutMix paper's (default); odin: temperature + input perturbation; "
        "energy: free energy",
    )
    p.add_argument("--temperature", type=float, default=None, help="odin (default 1000) / energy (default 1)")
    p.add_argument("--epsilon", type=float, default=None, help="odin's perturbation magnitude (default 0.0014)")
    p.add_argument("--out", default=None, help="output folder (default work_dirs/ood/<checkpoint>_<detector>)")
    p.add_argument(
        "--noise-count",
        type=int,
        default=DEFAULT_NOISE_COUNT,
        help=f"images generated per noise set (default {DEFAULT_NOISE_COUNT:,}; ODIN scores 9,000 per noise "
        "set: 10,000 with --skip-first 1000)",
    )
    p.add_argument(
        "--skip-first",
        type=int,
        default=0,
        metavar="N",
        help="leave out the first N images of every set, the in-distribution and noise sets included (default 0; "
        "ODIN's code skips 1000, its tuning images)",
    )
    p.add_argument(
        "--metrics-as",
        default="exact",
        choices=list(METRICS_AS),
        help="whose metric code: exact (default: exact ROC / scikit-learn definitions); odin: facebookresearch/"
        "odin calMetric.py, on its fixed grid of 100,000 thresholds; lee: deep_Mahalanobis_detector "
        "calculate_log.py. odin / lee need scores in [0, 1] (not --detector energy)",
    )
    p.add_argument(
        "--score-dtype",
        default="float64",
        choices=["float64", "float32"],
        help="precision of the softmax (default float64; the reference codes use float32, where a confident "
        "model's in-distribution scores tie at 1.0)",
    )
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    cfg = call_with_options(OODEvalConfig, args, ood=tuple(args.ood))
    result = evaluate_ood(cfg)
    if not result.files:  # a torchrun rank other than 0: rank 0 prints and writes
        return 0
    rec = result.record
    width = max(len(n) for n in ["mean", *rec["ood_sets"]])
    print(f"{'set':<{width}}  " + "  ".join(f"{k:>13}" for k in METRICS))
    for name in rec["ood_sets"]:
        print(f"{name:<{width}}  " + "  ".join(f"{rec['per_set'][name][k]:13.2f}" for k in METRICS))
    print(f"{'mean':<{width}}  " + "  ".join(f"{rec['mean'][k]:13.2f}" for k in METRICS))
    print(
        f"{rec['dataset']} top-1 err {rec['metrics']['top1_err']:.2f}, detector {rec['detector']} -> {result.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
