"""The demo in the MS-COCO 2014 captions layout, with Karpathy's split file.

Writes train2014/ and val2014/ (COCO_<split>2014_<12-digit id>.jpg, sparse ids like COCO's),
annotations/captions_{train,val}2014.json (five captions per image) and dataset_coco.json (Karpathy & Fei-Fei:
train from train2014; from val2014 a quarter each to val and test, the rest to restval; sentences carry `raw`
and `tokens`, the latter from `datasets.text.tokenize`).

Box convention: none; the captions layout carries no boxes (COCO's `bbox` [x, y, w, h] lives in the instances
files, which the demo does not write). Each image holds one object, and its captions describe that object's head
colour (the class), size, shape and position.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from ...errors import ConfigError
from ...io import atomic_write_json
from ..text import tokenize
from .captions import make_captions
from .files import encode_image, write_file
from .scene import STREAMS, balanced_labels, image_rng, jitter_size, render_scene

if TYPE_CHECKING:
    from . import DemoSpec

DIRNAME = "coco"


def check(spec: DemoSpec) -> None:
    """ConfigError when val2014 is too small for Karpathy's val/test/restval split."""
    if 0 < spec.coco_val_images < 4:
        raise ConfigError(
            f"coco_val_images={spec.coco_val_images}: need at least 4 for the Karpathy val/test/restval split (or 0)."
        )


def write(root: Path, spec: DemoSpec, progress: bool) -> dict:
    """Write the COCO captions layout under `root` (the coco folder); returns image counts and Karpathy splits."""
    n = spec.num_classes
    info = {
        "description": "cutmix_transfer demo captions (generated, COCO 2014 layout)",
        "version": "1.0",
        "year": 2014,
        "contributor": "cutmix_transfer",
        "date_created": "2014-01-01 00:00:00",
    }
    licenses = [{"id": 1, "name": "CC0 (generated data)", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}]
    karpathy, sent_id, ann_id, img_idx = [], 0, 1, 0
    counts = {}
    for split, count, id_base in (("train", spec.coco_train_images, 1000000), ("val", spec.coco_val_images, 2000000)):
        stream = STREAMS[f"coco_{split}"]
        labels = balanced_labels(spec.seed, stream, n, -(-count // n))[:count]
        images, anns = [], []
        n_val = count // 4
        for i, c in enumerate(tqdm(labels, desc=f"coco {split}2014", disable=not progress), start=1):
            rng = image_rng(spec.seed, stream, i)
            w, h = jitter_size(rng, spec.image_size, spec.size_jitter)
            scene = render_scene(rng, w, h, [c], n)
            coco_id = id_base + i * 7  # sparse ids, like COCO's
            fname = f"COCO_{split}2014_{coco_id:012d}.jpg"
            write_file(root / f"{split}2014" / fname, encode_image(scene.image, ".jpg"))
            caps = make_captions(rng, scene.objects[0], w, h, n)
            images.append(
                {
                    "license": 1,
                    "file_name": fname,
                    "coco_url": "",
                    "height": h,
                    "width": w,
                    "date_captured": "2014-01-01 00:00:00",
                    "flickr_url": "",
                    "id": coco_id,
                }
            )
            sents = []
            for cap in caps:
                anns.append({"image_id": coco_id, "id": ann_id, "caption": cap})
                sents.append({"tokens": tokenize(cap), "raw": cap, "imgid": img_idx, "sentid": sent_id})
                ann_id += 1
                sent_id += 1
            if split == "train":
                ksplit = "train"
            else:
                ksplit = "val" if i <= n_val else "test" if i <= 2 * n_val else "restval"
            karpathy.append(
                {
                    "filepath": f"{split}2014",
                    "sentids": [s["sentid"] for s in sents],
                    "filename": fname,
                    "imgid": img_idx,
                    "split": ksplit,
                    "sentences": sents,
                    "cocoid": coco_id,
                }
            )
            img_idx += 1
        atomic_write_json(
            root / "annotations" / f"captions_{split}2014.json",
            {"info": info, "images": images, "licenses": licenses, "annotations": anns},
        )
        counts[split] = len(images)
    atomic_write_json(root / "dataset_coco.json", {"images": karpathy, "dataset": "coco"})
    counts["karpathy"] = {s: sum(1 for im in karpathy if im["split"] == s) for s in ("train", "val", "test", "restval")}
    return counts
