"""The demo in the PASCAL VOCdevkit layout: VOC2007 (trainval + test) and VOC2012 (trainval).

Writes <year>/JPEGImages/*.jpg, <year>/Annotations/*.xml (1-3 objects per image; objects whose body is tiny are
difficult=1) and <year>/ImageSets/Main/{trainval,train,val,test}.txt with all 20 per-class lists
(`<id>  1` present, `<id>  0` only difficult instances, `<id> -1` absent), as mmdet's VOCDataset reads them. Demo
class k is written as the k-th name of mmdet's VOC class order (at most 20 classes).

Box convention: 1-based inclusive pixel indices, the VOC convention: xmin = x0 + 1, ymin = y0 + 1, xmax = x1,
ymax = y1 for the scene's exclusive box x0 y0 x1 y1 (mmdet 3.x subtracts 1 from each corner when it reads them).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from ...io import atomic_write_text
from .files import encode_image, pascal_xml, write_file
from .scene import STREAMS, VOC_CLASSES, demo_voc_class_names, image_rng, jitter_size, render_scene

if TYPE_CHECKING:
    from . import DemoSpec

DIRNAME = "VOCdevkit"


def check(spec: DemoSpec) -> None:
    """ConfigError when the spec has more classes than VOC has names."""
    demo_voc_class_names(spec.num_classes)


def write(root: Path, spec: DemoSpec, progress: bool) -> dict:
    """Write VOC2007 and VOC2012 under `root` (the VOCdevkit folder); returns the image counts per year and set."""
    n = spec.num_classes
    voc_names = demo_voc_class_names(n)
    counts = {}
    years = (
        ("VOC2007", "voc2007", "", spec.voc_trainval_images, spec.voc_test_images),
        ("VOC2012", "voc2012", "2012_", spec.voc_trainval_images, 0),
    )
    for year, key, prefix, n_trainval, n_test in years:
        ydir = root / year
        ids = {"trainval": [], "test": []}
        cls_flags: dict[str, dict[str, int]] = {}
        total = n_trainval + n_test
        for i in tqdm(range(1, total + 1), desc=year, disable=not progress):
            split = "trainval" if i <= n_trainval else "test"
            stream = STREAMS[key] if split == "trainval" else STREAMS["voc2007_test"]
            rng = image_rng(spec.seed, stream, i if split == "trainval" else i - n_trainval)
            w, h = jitter_size(rng, spec.det_image_size, spec.size_jitter)
            labels = [int(x) for x in rng.integers(0, n, size=int(rng.integers(1, 4)))]
            scene = render_scene(rng, w, h, labels, n, size_range=(0.16, 0.42), tiny_prob=0.15, tiny_range=(0.06, 0.10))
            img_id = f"{prefix}{i:06d}"
            write_file(ydir / "JPEGImages" / f"{img_id}.jpg", encode_image(scene.image, ".jpg"))
            objs = [
                (
                    voc_names[o.label],
                    [int(o.box_xyxy[0]) + 1, int(o.box_xyxy[1]) + 1, int(o.box_xyxy[2]), int(o.box_xyxy[3])],
                    int(o.difficult),
                )
                for o in scene.objects
            ]
            xml = pascal_xml(
                year,
                f"{img_id}.jpg",
                w,
                h,
                objs,
                f"The {year} Database",
                {"annotation": f"PASCAL {year}", "image": "cutmix_transfer demo"},
            )
            write_file(ydir / "Annotations" / f"{img_id}.xml", xml.encode())
            ids[split].append(img_id)
            flags = {}
            for name, _, diff in objs:  # 1 present, 0 only difficult instances, -1 absent
                flags[name] = max(flags.get(name, 0), 0 if diff else 1)
            cls_flags[img_id] = flags
        tv = ids["trainval"]
        sets = {"trainval": tv, "train": tv[0::2], "val": tv[1::2]}
        if n_test:
            sets["test"] = ids["test"]
        main = ydir / "ImageSets" / "Main"
        for name, lst in sets.items():
            atomic_write_text(main / f"{name}.txt", "".join(f"{x}\n" for x in lst))
            for cname in VOC_CLASSES:  # the real devkit has all 20 per-class lists
                atomic_write_text(
                    main / f"{cname}_{name}.txt", "".join(f"{x} {cls_flags[x].get(cname, -1):2d}\n" for x in lst)
                )
        counts[year] = {k: len(v) for k, v in sets.items()}
    return counts
