"""The demo generator: scene design A, the real layouts' files, determinism, resumability and the tool."""

from __future__ import annotations

import colorsys
import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DEMO_KWARGS
from helpers import REPO, load_tool_main, tool_env

from cutmix_transfer.datasets import demo
from cutmix_transfer.datasets.demo.scene import STREAMS
from cutmix_transfer.datasets.text import tokenize
from cutmix_transfer.errors import ConfigError

TOOL = REPO / "tools" / "make_demo_data.py"
N = DEMO_KWARGS["num_classes"]


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _lines(path: Path) -> list[list[str]]:
    return [ln.split() for ln in path.read_text().splitlines() if ln.strip()]


# ------------------------------------------------------------------------------------------ names


def test_class_names_unique_and_voc_mapping():
    for n in (2, 3, 4, 10, 12, 13, 30):
        names = demo.demo_class_names(n)
        assert len(names) == n and len(set(names)) == n
        syns = demo.demo_synsets(n)
        assert syns == sorted(syns) and all(len(s) == 9 and s[0] == "n" and s[1:].isdigit() for s in syns)
    assert demo.demo_class_names(10)[:3] == ["red", "orange", "yellow"]
    assert demo.demo_voc_class_names(4) == ["aeroplane", "bicycle", "bird", "boat"]
    assert demo.demo_voc_class_names(20) == list(demo.VOC_CLASSES) and len(demo.VOC_CLASSES) == 20
    with pytest.raises(ConfigError, match="20"):
        demo.demo_voc_class_names(21)
    with pytest.raises(ConfigError):
        demo.demo_class_names(1)
    m = demo.demo_class_mapping(4)
    assert [c["voc_name"] for c in m] == ["aeroplane", "bicycle", "bird", "boat"]
    assert [c["cub_dir"][:4] for c in m] == ["001.", "002.", "003.", "004."]


def test_layout_table_and_rng_streams():
    """One writers table gives the layouts, their folders and their order; every RNG stream id is distinct."""
    assert demo.LAYOUTS == ("cub", "imagenet", "voc", "coco", "cifar100", "ood", "openimages")
    assert demo.DEFAULT_LAYOUTS == ("cub", "imagenet", "voc", "coco")
    assert demo.LAYOUT_DIRS == {
        "cub": "CUB_200_2011",
        "imagenet": "ILSVRC",
        "voc": "VOCdevkit",
        "coco": "coco",
        "cifar100": "cifar-100-python",
        "ood": "ood",
        "openimages": "OpenImages",
    }
    assert len(set(STREAMS.values())) == len(STREAMS)


# ------------------------------------------------------------------------------------------ scenes


def _hue_deg(rgb: np.ndarray) -> tuple[float, float]:
    h, s, _ = colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255.0))
    return h * 360.0, s


def test_scene_design_a_statistics():
    """Body size range, box = mask bbox, head inside the body, saturated head of the class hue, ~80% tint."""
    size, n, count = 96, 10, 300
    hues = demo.demo_class_hues(n)
    ratios, tint_match = [], 0
    for i in range(count):
        rng = np.random.default_rng(i)
        label = i % n
        sc = demo.render_scene(rng, size, size, [label], n, noise_std=0.0)
        assert sc.image.shape == (size, size, 3) and sc.image.dtype == np.uint8
        (obj,) = sc.objects
        ys, xs = np.nonzero(obj.mask)
        assert obj.box_xyxy.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        w, h = obj.box_xyxy[2] - obj.box_xyxy[0], obj.box_xyxy[3] - obj.box_xyxy[1]
        # a rotated ellipse's bbox sides lie between its two diameters, both drawn from 0.28..0.46 of the side
        assert 0.28 * size - 2 <= w <= 0.46 * size + 2 and 0.28 * size - 2 <= h <= 0.46 * size + 2
        hx0, hy0, hx1, hy1 = obj.head_box_xyxy.astype(int)
        assert hx1 - hx0 == hy1 - hy0 >= 9
        assert obj.body_mask[hy0:hy1, hx0:hx1].all()  # the head lies inside the body ellipse
        head = np.zeros_like(obj.mask)
        head[hy0:hy1, hx0:hx1] = True
        assert np.array_equal(obj.mask, obj.body_mask | head)
        # 1-px black border, fully saturated class hue inside
        assert (sc.image[hy0, hx0:hx1] == 0).all() and (sc.image[hy1 - 1, hx0:hx1] == 0).all()
        hue, sat = _hue_deg(sc.image[(hy0 + hy1) // 2, (hx0 + hx1) // 2])
        assert sat > 0.99 and min(abs(hue - hues[label]), 360 - abs(hue - hues[label])) < 2.0
        ratios.append((hx1 - hx0) ** 2 / obj.mask.sum())
        tint_match += obj.tint_label == label
    assert 0.08 < float(np.mean(ratios)) < 0.16  # "about 11% of the body area"
    # binomial(300, 0.8): sd 0.023, so 0.72..0.88 is more than 3 sd either side
    assert 0.72 < tint_match / count < 0.88


def test_scene_body_is_weakly_tinted_and_striped():
    rng = np.random.default_rng(7)
    sc = demo.render_scene(rng, 96, 96, [3], 10, noise_std=0.0)
    obj = sc.objects[0]
    body = obj.mask.copy()
    hx0, hy0, hx1, hy1 = obj.head_box_xyxy.astype(int)
    body[hy0:hy1, hx0:hx1] = False
    px = sc.image[body].astype(float)
    sats = np.array([colorsys.rgb_to_hsv(*(p / 255.0))[1] for p in px])
    assert sats.max() < 0.45  # weak tint, far from the head's saturation 1
    values = px.max(1)
    assert len(np.unique(np.round(values))) >= 2 and values.max() / values.min() > 1.3  # two stripe shades


def test_multi_object_scenes_do_not_overlap_and_tiny_are_difficult():
    diffs = 0
    for i in range(60):
        sc = demo.render_scene(np.random.default_rng(i), 160, 160, [0, 1, 2], 4, size_range=(0.16, 0.42), tiny_prob=0.3)
        masks = [o.mask for o in sc.objects]
        for a in range(len(masks)):
            for b in range(a + 1, len(masks)):
                assert not (masks[a] & masks[b]).any()
        for o in sc.objects:
            if o.difficult:
                diffs += 1
                assert max(o.box_xyxy[2] - o.box_xyxy[0], o.box_xyxy[3] - o.box_xyxy[1]) <= 0.10 * 160 + 2
    assert diffs > 0


def test_captions_are_varied_and_grammatical():
    rng = np.random.default_rng(0)
    sc = demo.render_scene(rng, 96, 96, [1], 10)
    caps = demo.make_captions(rng, sc.objects[0], 96, 96, 10)
    assert len(caps) == 5 and len(set(caps)) == 5
    assert all("orange" in c for c in caps)
    assert not any(" a orange" in c.lower() or c.lower().startswith("a orange") for c in caps)


def test_generator_captions_tokenize_as_before():
    """The generator's captions are ASCII, where the shared tokenizer equals the generator's former rule (runs of
    str.isalnum characters, lower-cased): the demo's Karpathy tokens do not change."""
    n = 12  # every hue name of the caption colour table
    for i in range(300):
        rng = np.random.default_rng(i)
        sc = demo.render_scene(rng, 96, 96, [i % n], n)
        for c in demo.make_captions(rng, sc.objects[0], 96, 96, n):
            assert c.isascii()
            assert tokenize(c) == "".join(ch if ch.isalnum() else " " for ch in c.lower()).split()


# ------------------------------------------------------------------------------------------ layouts


def test_cub_layout_files_agree_with_masks_and_images(demo_root: Path):
    cub = demo_root / "CUB_200_2011"
    images = {int(i): rel for i, rel in _lines(cub / "images.txt")}
    labels = {int(i): int(c) for i, c in _lines(cub / "image_class_labels.txt")}
    split = {int(i): int(f) for i, f in _lines(cub / "train_test_split.txt")}
    boxes = {int(r[0]): [float(v) for v in r[1:]] for r in _lines(cub / "bounding_boxes.txt")}
    classes = [r[1] for r in _lines(cub / "classes.txt")]
    assert list(images) == list(range(1, len(images) + 1))
    assert len(images) == N * (DEMO_KWARGS["per_class"] + DEMO_KWARGS["test_per_class"])
    assert Counter(split.values()) == {1: N * DEMO_KWARGS["per_class"], 0: N * DEMO_KWARGS["test_per_class"]}
    for i, rel in images.items():
        assert rel.split("/")[0] == classes[labels[i] - 1]
        img = cv2.imread(str(cub / "images" / rel))
        assert img.shape == (64, 64, 3)
        mask = cv2.imread(str(cub / "segmentations" / rel).replace(".jpg", ".png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255}
        ys, xs = np.nonzero(mask)
        assert boxes[i] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]


def test_imagenet_layout(demo_root: Path):
    il = demo_root / "ILSVRC"
    synsets = [ln.split()[0] for ln in (il / "LOC_synset_mapping.txt").read_text().splitlines()]
    assert synsets == demo.demo_synsets(N)
    rows = (il / "LOC_val_solution.csv").read_text().splitlines()
    assert rows[0] == "ImageId,PredictionString"
    n_val = N * DEMO_KWARGS["imagenet_val_per_class"]
    assert len(rows) == 1 + n_val
    for row in rows[1:]:
        image_id, pred = row.split(",")
        toks = pred.split()
        root = ET.parse(il / "Annotations" / "CLS-LOC" / "val" / f"{image_id}.xml").getroot()
        w, h = int(root.findtext("size/width")), int(root.findtext("size/height"))
        img = cv2.imread(str(il / "Data" / "CLS-LOC" / "val" / f"{image_id}.JPEG"))
        assert img.shape[:2] == (h, w)
        xml_objs = [
            [o.findtext("name")] + [o.findtext(f"bndbox/{t}") for t in ("xmin", "ymin", "xmax", "ymax")]
            for o in root.findall("object")
        ]
        assert sum(xml_objs, []) == toks
        for o in xml_objs:  # 0-based inclusive pixel indices
            assert 0 <= int(o[1]) <= int(o[3]) <= w - 1 and 0 <= int(o[2]) <= int(o[4]) <= h - 1
    assert sorted(r.split(",")[0] for r in rows[1:]) == [f"ILSVRC2012_val_{i:08d}" for i in range(1, n_val + 1)]


def test_voc_layout(demo_root: Path):
    voc_names = demo.demo_voc_class_names(N)
    for year, has_test in (("VOC2007", True), ("VOC2012", False)):
        d = demo_root / "VOCdevkit" / year
        main = d / "ImageSets" / "Main"
        sets = {s: (main / f"{s}.txt").read_text().split() for s in ("trainval", "train", "val")}
        assert sorted(sets["train"] + sets["val"]) == sorted(sets["trainval"])
        assert not set(sets["train"]) & set(sets["val"])
        assert (main / "test.txt").exists() == has_test
        ids = sets["trainval"] + ((main / "test.txt").read_text().split() if has_test else [])
        assert len(ids) == DEMO_KWARGS["voc_trainval_images"] + (DEMO_KWARGS["voc_test_images"] if has_test else 0)
        for img_id in ids:
            root = ET.parse(d / "Annotations" / f"{img_id}.xml").getroot()
            assert root.findtext("folder") == year and root.findtext("filename") == f"{img_id}.jpg"
            w, h = int(root.findtext("size/width")), int(root.findtext("size/height"))
            assert int(root.findtext("size/depth")) == 3
            assert cv2.imread(str(d / "JPEGImages" / f"{img_id}.jpg")).shape[:2] == (h, w)
            objs = root.findall("object")
            assert 1 <= len(objs) <= 3
            for o in objs:
                assert o.findtext("name") in voc_names
                assert o.findtext("difficult") in ("0", "1") and o.findtext("truncated") == "0"
                b = [int(o.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax")]
                assert 1 <= b[0] < b[2] <= w and 1 <= b[1] < b[3] <= h  # 1-based inclusive
        # per-class lists agree with the annotations (1 present, 0 only difficult, -1 absent)
        for cname in demo.VOC_CLASSES:
            for img_id, flag in (ln.split() for ln in (main / f"{cname}_trainval.txt").read_text().splitlines()):
                objs = [
                    o
                    for o in ET.parse(d / "Annotations" / f"{img_id}.xml").getroot().findall("object")
                    if o.findtext("name") == cname
                ]
                want = -1 if not objs else (1 if any(o.findtext("difficult") == "0" for o in objs) else 0)
                assert int(flag) == want


def test_voc_layout_has_difficult_objects(tmp_path: Path):
    """Over a larger VOC set some tiny objects are marked difficult (and no large one is)."""
    kwargs = dict(DEMO_KWARGS, seed=3, voc_trainval_images=40, voc_test_images=0, layouts=("voc",))
    demo.make_demo_data(tmp_path, **kwargs)
    diff = big_diff = 0
    for f in (tmp_path / "VOCdevkit" / "VOC2007" / "Annotations").glob("*.xml"):
        for o in ET.parse(f).getroot().findall("object"):
            b = [int(o.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax")]
            if o.findtext("difficult") == "1":
                diff += 1
                big_diff += max(b[2] - b[0], b[3] - b[1]) + 1 > 0.10 * 1.2 * kwargs["det_image_size"] + 2
    assert diff > 0 and big_diff == 0


def test_coco_layout_and_karpathy(demo_root: Path):
    from pycocotools.coco import COCO

    coco_dir = demo_root / "coco"
    karpathy = json.loads((coco_dir / "dataset_coco.json").read_text())
    assert karpathy["dataset"] == "coco"
    by_cocoid = {im["cocoid"]: im for im in karpathy["images"]}
    all_ann_ids, all_sent = set(), []
    for split, n in (("train", DEMO_KWARGS["coco_train_images"]), ("val", DEMO_KWARGS["coco_val_images"])):
        path = coco_dir / "annotations" / f"captions_{split}2014.json"
        raw = json.loads(path.read_text())
        assert set(raw) == {"info", "images", "licenses", "annotations"}
        coco = COCO(str(path))
        assert len(coco.getImgIds()) == n
        for img_id in coco.getImgIds():
            info = coco.loadImgs(img_id)[0]
            assert info["file_name"] == f"COCO_{split}2014_{img_id:012d}.jpg"
            img = cv2.imread(str(coco_dir / f"{split}2014" / info["file_name"]))
            assert img.shape[:2] == (info["height"], info["width"])
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            assert len(anns) == 5
            all_ann_ids |= {a["id"] for a in anns}
            k = by_cocoid[img_id]
            assert k["filepath"] == f"{split}2014" and k["filename"] == info["file_name"]
            assert [s["raw"] for s in k["sentences"]] == [a["caption"] for a in anns]
            assert k["sentids"] == [s["sentid"] for s in k["sentences"]]
            assert all(s["imgid"] == k["imgid"] for s in k["sentences"])
            assert (k["split"] == "train") == (split == "train")
            all_sent += k["sentences"]
    assert len(all_ann_ids) == 5 * (DEMO_KWARGS["coco_train_images"] + DEMO_KWARGS["coco_val_images"])
    assert [s["sentid"] for s in all_sent] == list(range(len(all_sent)))
    assert Counter(im["split"] for im in karpathy["images"]) == {"train": 8, "val": 2, "test": 2, "restval": 4}
    for s in all_sent:  # tokens are the lower-cased words of raw, as the shared tokenizer gives them
        assert s["tokens"] == "".join(c if c.isalnum() or c.isspace() else " " for c in s["raw"].lower()).split()
        assert s["tokens"] == tokenize(s["raw"])
    # a count-threshold vocabulary keeps the template words
    counts = Counter(t for s in all_sent for t in s["tokens"])
    assert {"a", "with", "square", "striped", "object"} & {w for w, c in counts.items() if c >= 5}


# ---------------------------------------------------------------------------------- determinism & marker


def test_same_seed_identical_bytes_other_seed_differs(tmp_path: Path, demo_root: Path):
    kwargs = dict(DEMO_KWARGS)
    demo.make_demo_data(tmp_path / "a", **kwargs)
    a, ref = _tree_digest(tmp_path / "a"), _tree_digest(demo_root)
    assert a == ref and len(a) > 100
    kwargs["seed"] = 1
    demo.make_demo_data(tmp_path / "b", **kwargs)
    b = _tree_digest(tmp_path / "b")
    assert set(b) == set(a)
    jpgs = [k for k in a if k.endswith((".jpg", ".JPEG"))]
    assert sum(a[k] != b[k] for k in jpgs) == len(jpgs)


def test_layout_subset_gives_same_images(tmp_path: Path, demo_root: Path):
    kwargs = dict(DEMO_KWARGS, layouts=("imagenet",))
    demo.make_demo_data(tmp_path, **kwargs)
    assert not (tmp_path / "CUB_200_2011").exists()
    sub = _tree_digest(tmp_path / "ILSVRC")
    assert sub == _tree_digest(demo_root / "ILSVRC")


def test_rerun_reuses_and_interrupted_run_regenerates(tmp_path: Path):
    kwargs = dict(DEMO_KWARGS, layouts=("cub",))
    first = demo.make_demo_data(tmp_path, **kwargs)
    assert not first.reused and (tmp_path / demo.COMPLETE_MARKER).is_file()
    probe = tmp_path / "CUB_200_2011" / "images.txt"
    mtime = probe.stat().st_mtime_ns
    again = demo.make_demo_data(tmp_path, **kwargs)
    assert again.reused and probe.stat().st_mtime_ns == mtime
    assert demo.read_demo_manifest(tmp_path)["counts"]["cub"] == {"train": 16, "test": 8}
    # a killed run leaves no marker: the next call starts clean and rewrites everything
    (tmp_path / demo.COMPLETE_MARKER).unlink()
    stray = tmp_path / "CUB_200_2011" / "images" / "stray.jpg"
    stray.write_bytes(b"half-written")
    with pytest.raises(Exception, match="no complete demo data"):
        demo.read_demo_manifest(tmp_path)
    third = demo.make_demo_data(tmp_path, **kwargs)
    assert not third.reused and not stray.exists()
    # other settings regenerate; a layout no longer asked for is removed
    demo.make_demo_data(tmp_path, **dict(kwargs, layouts=("imagenet",)))
    assert not (tmp_path / "CUB_200_2011").exists() and (tmp_path / "ILSVRC").is_dir()


def test_refuses_to_overwrite_a_real_dataset(tmp_path: Path):
    (tmp_path / "CUB_200_2011").mkdir()
    (tmp_path / "CUB_200_2011" / "images.txt").write_text("1 001.A/a.jpg\n")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        demo.make_demo_data(tmp_path, **DEMO_KWARGS)
    assert (tmp_path / "CUB_200_2011" / "images.txt").read_text() == "1 001.A/a.jpg\n"


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(num_classes=1), "at least 2"),
        (dict(num_classes=21), "20"),
        (dict(image_size=16), "at least 32"),
        (dict(per_class=-1), "negative"),
        (dict(layouts=("cub", "kitti")), "choose from"),
        (dict(size_jitter=0.7), "size_jitter"),
    ],
)
def test_bad_settings_raise_config_error(tmp_path: Path, bad, match):
    kwargs = dict(DEMO_KWARGS, **bad)
    with pytest.raises(ConfigError, match=match):
        demo.make_demo_data(tmp_path, **kwargs)


def test_tool_writes_and_reports(tmp_path: Path, capsys):
    args = [
        "--out",
        str(tmp_path / "d"),
        "--seed",
        "2",
        "--image-size",
        "64",
        "--per-class",
        "2",
        "--num-classes",
        "3",
        "--layouts",
        "cub",
        "voc",
        "--voc-trainval",
        "4",
        "--voc-test",
        "2",
        "--det-image-size",
        "64",
    ]
    ok = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, cwd=REPO, env=tool_env())
    assert ok.returncode == 0, ok.stderr
    assert "CUB_200_2011" in ok.stdout and "VOCdevkit" in ok.stdout and "aeroplane" in ok.stdout
    assert (tmp_path / "d" / "CUB_200_2011" / "images.txt").is_file()
    assert not (tmp_path / "d" / "coco").exists()
    # the error path in-process (a second interpreter start costs ~10 s on the shared machine)
    main = load_tool_main(TOOL, "make_demo_data_tool")
    capsys.readouterr()
    assert main(["--out", str(tmp_path / "e"), "--num-classes", "25"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.strip().count("\n") == 0 and "20" in err
    assert main(args) == 0 and "reused" in capsys.readouterr().out


def test_mmdet_voc_dataset_reads_the_demo_layout(demo_root: Path):
    """mmdet's own VOCDataset (the consumer of this layout) parses both years with the demo's VOC names."""
    pytest.importorskip("mmdet")
    from mmdet.datasets import VOCDataset

    names = tuple(demo.demo_voc_class_names(N))
    for year, split in (("VOC2007", "trainval"), ("VOC2007", "test"), ("VOC2012", "trainval")):
        ds = VOCDataset(
            data_root=str(demo_root / "VOCdevkit"),
            ann_file=f"{year}/ImageSets/Main/{split}.txt",
            data_prefix=dict(sub_data_root=f"{year}/"),
            metainfo=dict(classes=names),
            pipeline=[],
            test_mode=True,
        )
        ids = (demo_root / "VOCdevkit" / year / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
        assert len(ds) == len(ids)
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            root = ET.parse(info["xml_path"]).getroot()
            assert (info["width"], info["height"]) == (
                int(root.findtext("size/width")),
                int(root.findtext("size/height")),
            )
            objs = root.findall("object")
            assert len(info["instances"]) == len(objs)
            for inst, o in zip(info["instances"], objs):
                assert names[inst["bbox_label"]] == o.findtext("name")
                assert inst["ignore_flag"] == int(o.findtext("difficult"))
                # mmdet 3.3 turns VOC's 1-based corners into 0-based ones
                assert inst["bbox"] == [int(o.findtext(f"bndbox/{t}")) - 1 for t in ("xmin", "ymin", "xmax", "ymax")]
