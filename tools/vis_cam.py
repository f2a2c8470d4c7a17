#!/usr/bin/env python
"""CAM overlays for any images with a classifier checkpoint.

    python tools/vis_cam.py --backbone work_dirs/cub_cutmix/epoch_30.pth bird1.jpg bird2.jpg --out vis/
    python tools/vis_cam.py --backbone ckpt.pth img.jpg --class 12 --class-names data/CUB_200_2011/classes.txt

Each image is resized to 224x224 as in evaluation (--image-size S: S x S for a backbone trained at S); the CAM of
--class (default: the top-1 class) is drawn over the image at its own size, titled with the class, its probability
and the top-5. Inputs are normalised with --mean / --std, else the
checkpoint meta's statistics, else ImageNet's. Writes <out>/<n>_<name>_cam.png.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import (
    add_cam_arg,
    add_classifier_eval_args,
    add_normalization_args,
    call_with_options,
    main_guard,
    parse_tool_args,
)
from cutmix_transfer.wsol.vis_cam import VisCamConfig, vis_cam


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="image files")
    add_classifier_eval_args(p, image_size_help="network input side (default 224, as in evaluation)")
    add_normalization_args(p, "default: the checkpoint meta's, else ImageNet's")
    add_cam_arg(p)
    p.add_argument("--class", dest="class_index", type=int, default=None, help="class index (default: top-1)")
    p.add_argument(
        "--class-names", default=None, help="classes.txt (CUB), LOC_synset_mapping.txt (ImageNet) or one name per line"
    )
    p.add_argument("--out", default="work_dirs/vis_cam", help="output folder")
    p.add_argument("--alpha", type=float, default=0.5, help="heatmap weight in the overlay")
    p.add_argument("--standard-form", dest="wsol_form", action="store_false", help="keep the ResNet's stride-2 layer4")
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    cfg = call_with_options(VisCamConfig, args, input_size=args.image_size)
    for view in vis_cam(cfg):
        print(view.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
