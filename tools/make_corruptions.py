#!/usr/bin/env python
"""Write corrupted copies of a clean set in the layouts of ImageNet-C or CIFAR-C, for tools/corruption_eval.py
(docs/corruption_protocol.md, "Generation"): the 16 corruptions of hendrycks/robustness that need neither ImageMagick
nor external files (motion_blur, snow and frost are not made), at severities 1-5, with the severity parameters of
ImageNet-C (224 px), Tiny-ImageNet-C (64 px) or CIFAR-C (32 px).

    python tools/make_corruptions.py --layout imagenet-c --data-root data/demo/ILSVRC --out data/demo/ImageNet-C \\
        --param-set tinyimagenet --image-size 96
    python tools/make_corruptions.py --layout imagenet-c --image-folder my_images --out my_images_c
    python tools/make_corruptions.py --layout cifar-c --data-root data/demo/cifar --out data/demo/CIFAR-100-C

Sources: --data-root an ILSVRC folder (Kaggle layout: its val images, keyed by wnid) or a CIFAR python folder
(its test set); --image-folder a folder of <class>/<image> (your own images). Writes <out>/<corruption>/<1-5>/
<class>/<file> JPEGs (quality 85), or <out>/<corruption>.npy + labels.npy, and <out>/corruptions_manifest.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cutmix_transfer.cli import add_verbose_arg, main_guard, parse_tool_args
from cutmix_transfer.corruptions.params import GENERATED, PARAM_SETS
from cutmix_transfer.corruptions.write import PREPS, write_cifar_c, write_imagenet_c
from cutmix_transfer.datasets.classification import IMG_EXTENSIONS, CIFARDataset
from cutmix_transfer.datasets.imagenet import load_imagenet_val, load_synsets, resolve_imagenet_root
from cutmix_transfer.errors import ConfigError, DatasetError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layout", required=True, choices=("imagenet-c", "cifar-c"), help="the layout to write")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data-root", help="an ILSVRC folder (imagenet-c) or a CIFAR python folder (cifar-c)")
    src.add_argument("--image-folder", help="imagenet-c only: a folder of <class>/<image> files")
    p.add_argument("--out", required=True, help="the folder to write (created)")
    p.add_argument("--corruptions", nargs="+", default=[], metavar="NAME", help=f"a subset of: {' '.join(GENERATED)}")
    p.add_argument("--severities", nargs="+", type=int, default=[1, 2, 3, 4, 5], help="imagenet-c: a subset of 1-5")
    p.add_argument(
        "--param-set",
        choices=sorted(PARAM_SETS),
        default=None,
        help="severity parameters: imagenet (224 px), tinyimagenet (64 px), cifar (32 px); default imagenet for "
        "imagenet-c, cifar for cifar-c",
    )
    p.add_argument("--image-size", type=int, default=None, help="imagenet-c: the square side (default: the set's)")
    p.add_argument("--prep", choices=PREPS, default="resize-crop", help="imagenet-c: how a clean image is made square")
    p.add_argument("--max-images", type=int, default=None, help="the first N clean images (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random corruptions (default 0)")
    p.add_argument("--workers", type=int, default=0, help="imagenet-c: processes (default 0: this one)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    add_verbose_arg(p)
    return p


def _imagenet_images(args) -> list[tuple[str, Path]]:
    if args.image_folder is not None:
        root = Path(args.image_folder)
        if not root.is_dir():
            raise DatasetError(f"--image-folder {root}: not a folder; give a folder of <class>/<image> files")
        images = [
            (f"{f.parent.name}/{f.name}", f)
            for f in sorted(root.glob("*/*"))
            if f.is_file() and f.suffix.lower() in {e.lower() for e in IMG_EXTENSIONS}
        ]
        if not images:
            raise DatasetError(f"--image-folder {root}: no <class>/<image> files")
        return images
    root = resolve_imagenet_root(args.data_root)
    mapping = root / "LOC_synset_mapping.txt"
    wnids = [w for w, _ in load_synsets(mapping if mapping.is_file() else root.parent / mapping.name)]
    return [
        (f"{wnids[s.label]}/{Path(s.path).name}", Path(s.path)) for s in load_imagenet_val(root, check_images=False)
    ]


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    if args.max_images is not None and args.max_images < 1:
        raise ConfigError(f"--max-images {args.max_images}: give a positive number (or leave it out: all)")
    if args.layout == "imagenet-c":
        images = _imagenet_images(args)[: args.max_images]
        if args.image_size is not None and not 8 <= args.image_size <= 1024:
            raise ConfigError(f"--image-size {args.image_size}: give a side in pixels, 8..1024")
        if any(s not in range(1, 6) for s in args.severities):
            raise ConfigError(f"--severities {args.severities}: choose among 1 2 3 4 5")
        done = write_imagenet_c(
            images,
            args.out,
            args.corruptions,
            args.severities,
            param_set=args.param_set or "imagenet",
            side=args.image_size,
            prep=args.prep,
            seed=args.seed,
            workers=args.workers,
            progress=args.progress,
            source=args.image_folder or args.data_root,
        )
    else:
        if args.image_folder is not None:
            raise ConfigError("--image-folder is for --layout imagenet-c; give cifar-c a CIFAR --data-root")
        if sorted(args.severities) != [1, 2, 3, 4, 5]:
            raise ConfigError("--severities: the CIFAR-C layout holds all 5 severities in blocks; leave it out")
        test = CIFARDataset(args.data_root, "test", {"preset": "resize_test", "size": 32})
        n = args.max_images or len(test)
        done = write_cifar_c(
            test.data[:n],
            np.asarray(test.labels[:n]),
            args.out,
            args.corruptions,
            param_set=args.param_set or "cifar",
            seed=args.seed,
            progress=args.progress,
            source=args.data_root,
        )
    print(f"{done['images']} clean images x {len(done['corruptions'])} corruptions -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
