#!/usr/bin/env python
"""Generate the demo data (seeded scenes) in the real layouts: CUB_200_2011, ILSVRC, VOCdevkit, coco (and, when
asked for, cifar-100-python and ODIN-style OOD folders in ood/).

    python tools/make_demo_data.py --out data/demo [--seed 0] [--image-size 96] [--per-class 300]
                                   [--num-classes 10] [--layouts cub imagenet voc coco]
    python tools/make_demo_data.py --out data/demo_ood --layouts cifar100 ood [--cifar-train-per-class 100]

Same settings and seed give identical bytes; a rerun with the same settings reuses a complete folder.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import call_with_options, main_guard, setup_logging
from cutmix_transfer.datasets.demo import DEFAULT_LAYOUTS, LAYOUT_DIRS, LAYOUTS, make_demo_data


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/demo", help="folder that receives the layouts (default data/demo)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--image-size", type=int, default=96, help="side of CUB images; ImageNet/COCO vary around it")
    p.add_argument("--per-class", type=int, default=300, help="CUB train images per class; other counts follow")
    p.add_argument("--num-classes", type=int, default=10, help="number of classes (<= 20 with the VOC layout)")
    p.add_argument("--test-per-class", type=int, default=None, help="CUB test images per class (per-class // 6)")
    p.add_argument("--imagenet-val-per-class", type=int, default=None, help="ImageNet val images per class")
    p.add_argument("--imagenet-train-per-class", type=int, default=0, help="ImageNet train images per class (0)")
    p.add_argument("--det-image-size", type=int, default=160, help="VOC image side (varies by +-20%%)")
    p.add_argument("--voc-trainval", type=int, default=None, help="VOC2007 and VOC2012 trainval images each")
    p.add_argument("--voc-test", type=int, default=None, help="VOC2007 test images")
    p.add_argument("--coco-train", type=int, default=None, help="COCO train2014 images")
    p.add_argument("--coco-val", type=int, default=None, help="COCO val2014 images")
    p.add_argument("--cifar-train-per-class", type=int, default=100, help="CIFAR-100 layout train images per class")
    p.add_argument("--cifar-test-per-class", type=int, default=20, help="CIFAR-100 layout test images per class")
    p.add_argument("--ood-per-set", type=int, default=200, help="images in each OOD folder of the 'ood' layout")
    p.add_argument(
        "--openimages-per-class", type=int, default=4, help="images per class in each split of the 'openimages' layout"
    )
    p.add_argument(
        "--layouts",
        nargs="+",
        choices=LAYOUTS,
        default=list(DEFAULT_LAYOUTS),
        help="which layouts to write (default: all but cifar100, ood and openimages)",
    )
    p.add_argument("--force", action="store_true", help="regenerate even when a complete folder matches")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


@main_guard
def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    demo = call_with_options(
        make_demo_data,
        args,
        voc_trainval_images=args.voc_trainval,
        voc_test_images=args.voc_test,
        coco_train_images=args.coco_train,
        coco_val_images=args.coco_val,
        ood_images_per_set=args.ood_per_set,
    )
    print(f"demo data {'reused (complete, same settings)' if demo.reused else 'written'} in {demo.root}")
    for key in demo.spec.layouts:
        print(f"  {demo.root / LAYOUT_DIRS[key]}: {demo.counts.get(key)}")
    print(
        "  classes: "
        + ", ".join(f"{c['index']}={c['name']} ({c['synset']}, VOC '{c['voc_name']}')" for c in demo.classes)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
