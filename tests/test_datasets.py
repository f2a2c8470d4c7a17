"""Dataset readers on generated data: CUB raw layout, ImageNet val (XML and CSV), wsolevaluation metadata,
with every error path (missing file/folder, malformed line with file:line); the shared caption tokenizer."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DEMO_KWARGS

from cutmix_transfer.datasets import (
    WSOLSample,
    image_size_wh,
    load_cub,
    load_cub_classes,
    load_imagenet_val,
    load_synsets,
    load_wsol_metadata,
    write_wsol_metadata,
)
from cutmix_transfer.datasets.coco_captions import load_coco_captions
from cutmix_transfer.datasets.demo import demo_cub_class_dirs, demo_synsets
from cutmix_transfer.datasets.text import tokenize
from cutmix_transfer.errors import ConfigError, DatasetError

N = DEMO_KWARGS["num_classes"]


@pytest.fixture
def cub(tmp_path: Path, demo_root: Path) -> Path:
    """A private copy of the demo CUB folder that a test may break."""
    dst = tmp_path / "CUB_200_2011"
    shutil.copytree(demo_root / "CUB_200_2011", dst)
    return dst


@pytest.fixture
def ilsvrc(tmp_path: Path, demo_root: Path) -> Path:
    dst = tmp_path / "ILSVRC"
    shutil.copytree(demo_root / "ILSVRC", dst)
    return dst


def _edit_line(path: Path, lineno: int, text: str | None) -> None:
    lines = path.read_text().splitlines()
    if text is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------ CUB


def test_load_cub_matches_files_and_masks(demo_root: Path):
    classes = load_cub_classes(demo_root)  # the parent of CUB_200_2011 works too
    assert classes == demo_cub_class_dirs(N)
    for split, per in (("train", DEMO_KWARGS["per_class"]), ("test", DEMO_KWARGS["test_per_class"])):
        samples = load_cub(demo_root / "CUB_200_2011", split)
        assert len(samples) == N * per
        assert sorted(s.label for s in samples) == sorted(list(range(N)) * per)
        for s in samples:
            assert s.path == demo_root / "CUB_200_2011" / "images" / s.image_id
            assert classes[s.label] == s.image_id.split("/")[0]
            img = cv2.imread(str(s.path))
            assert s.size_wh == (img.shape[1], img.shape[0])
            mask = cv2.imread(str(s.mask_path), cv2.IMREAD_GRAYSCALE) > 127
            ys, xs = np.nonzero(mask)
            assert s.boxes_xyxy.dtype == np.float32 and s.boxes_xyxy.shape == (1, 4)
            assert s.boxes_xyxy[0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert not {s.image_id for s in load_cub(demo_root, "train")} & {s.image_id for s in load_cub(demo_root, "test")}


def test_load_cub_box_convention_and_masks_next_to_root(cub: Path):
    """x y w h -> x0 y0 x0+w y0+h (wsolevaluation), floats kept; segmentations/ may sit next to the root."""
    _edit_line(cub / "bounding_boxes.txt", 1, "1 60.0 27.5 325.0 304.0")
    s = {x.image_id: x for x in load_cub(cub, "train") + load_cub(cub, "test")}
    first = (cub / "images.txt").read_text().split()[1]
    assert s[first].boxes_xyxy.tolist() == [[60.0, 27.5, 385.0, 331.5]]
    shutil.move(str(cub / "segmentations"), str(cub.parent / "segmentations"))
    again = load_cub(cub, "test")
    assert all(
        x.mask_path is not None and x.mask_path.is_file() and x.mask_path.parent.parent == cub.parent / "segmentations"
        for x in again
    )
    assert all(x.mask_path is None for x in load_cub(cub, "test", with_masks=False))
    shutil.rmtree(cub.parent / "segmentations")
    assert all(x.mask_path is None for x in load_cub(cub, "test"))
    with pytest.raises(DatasetError, match="segmentations"):
        load_cub(cub, "test", with_masks=True)


@pytest.mark.parametrize(
    "name", ["images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt"]
)
def test_cub_missing_file(cub: Path, name: str):
    (cub / name).unlink()
    with pytest.raises(DatasetError) as e:
        load_cub(cub, "test")
    assert str(cub / name) in str(e.value) and "--data-root" in str(e.value)


def test_cub_missing_root_and_images_folder(tmp_path: Path, cub: Path):
    with pytest.raises(DatasetError, match="--data-root") as e:
        load_cub(tmp_path / "nowhere", "test")
    assert "CUB_200_2011" in str(e.value) and str(tmp_path / "nowhere") in str(e.value)
    shutil.rmtree(cub / "images")
    with pytest.raises(DatasetError, match=str(cub / "images")):
        load_cub(cub, "test")


@pytest.mark.parametrize(
    "name, line, why",
    [
        ("images.txt", "2", "1 fields, not 2"),
        ("images.txt", "x 001.A/b.jpg", "'x' is not a number"),
        ("image_class_labels.txt", "2 1 7", "3 fields"),
        ("image_class_labels.txt", "2 99", "outside 1..4"),
        ("image_class_labels.txt", "2 1.5", "not an integer"),
        ("train_test_split.txt", "2 2", "neither 1 nor 0"),
        ("bounding_boxes.txt", "2 1.0 2.0 3.0", "4 fields, not 5"),
        ("bounding_boxes.txt", "2 1.0 2.0 abc 4.0", "'abc' is not a number"),
        ("bounding_boxes.txt", "2 1.0 2.0 -3.0 4.0", "negative width"),
        ("bounding_boxes.txt", "2 1.0 nan 3.0 4.0", "not finite"),
        ("classes.txt", "2 002.B extra", "3 fields"),
        ("classes.txt", "3 003.C", "class id 3 where 2"),
        ("images.txt", "1 001.A/dup.jpg", "already on line 1"),
    ],
)
def test_cub_malformed_line_names_file_line_and_text(cub: Path, name: str, line: str, why: str):
    _edit_line(cub / name, 2, line)
    with pytest.raises(DatasetError) as e:
        load_cub(cub, "train")
        load_cub(cub, "test")
    msg = str(e.value)
    assert f"{cub / name}:2:" in msg and repr(line) in msg and why in msg


@pytest.mark.parametrize("name", ["image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt"])
def test_cub_files_that_do_not_belong_together(cub: Path, name: str):
    _edit_line(cub / name, 3, None)
    with pytest.raises(DatasetError, match=rf"{name}: no line for image id 3 \(images.txt:3"):
        load_cub(cub, "train")


def test_cub_missing_image_and_mask(cub: Path):
    samples = load_cub(cub, "test")
    samples[0].path.unlink()
    with pytest.raises(DatasetError, match="image not found") as e:
        load_cub(cub, "test")
    assert str(samples[0].path) in str(e.value)
    assert len(load_cub(cub, "test", check_images=False)) == len(samples)
    samples[1].mask_path.unlink()
    with pytest.raises(DatasetError, match="mask not found") as e:
        load_cub(cub, "test", check_images=False)
    assert str(samples[1].mask_path) in str(e.value)


def test_cub_bad_split_and_empty_split(cub: Path):
    with pytest.raises(ConfigError, match="'val'"):
        load_cub(cub, "val")  # type: ignore[arg-type]
    lines = (cub / "train_test_split.txt").read_text().splitlines()
    (cub / "train_test_split.txt").write_text("".join(f"{ln.split()[0]} 1\n" for ln in lines))
    with pytest.raises(DatasetError, match="no image is in the 'test' split"):
        load_cub(cub, "test")


def test_unreadable_image_header(tmp_path: Path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="unreadable image"):
        image_size_wh(bad)
    with pytest.raises(DatasetError, match="image not found"):
        image_size_wh(tmp_path / "y.jpg")


# ------------------------------------------------------------------------------------------ ImageNet


def test_load_imagenet_val_xml_equals_csv_and_xml_files(demo_root: Path):
    xml = load_imagenet_val(demo_root / "ILSVRC", source="xml")
    csv = load_imagenet_val(demo_root, source="csv")  # the parent of ILSVRC works too
    assert xml == csv and load_imagenet_val(demo_root) == xml
    syn = demo_synsets(N)
    assert len(xml) == N * DEMO_KWARGS["imagenet_val_per_class"]
    assert [s.image_id for s in xml] == sorted(s.image_id for s in xml)
    for s in xml:
        assert s.image_id.startswith("val/ILSVRC2012_val_") and s.path.name == s.image_id[4:]
        root = ET.parse(
            demo_root / "ILSVRC" / "Annotations" / "CLS-LOC" / "val" / s.path.name.replace(".JPEG", ".xml")
        ).getroot()
        assert syn[s.label] == root.findtext("object/name")
        want = [
            [float(o.findtext(f"bndbox/{t}")) for t in ("xmin", "ymin", "xmax", "ymax")] for o in root.findall("object")
        ]
        assert s.boxes_xyxy.tolist() == want
        img = cv2.imread(str(s.path))
        assert s.size_wh == (img.shape[1], img.shape[0])


def _handmade_ilsvrc(root: Path) -> None:
    """Three images written by hand (not by the generator): one with two boxes, one of the 2nd synset."""
    (root / "Data" / "CLS-LOC" / "val").mkdir(parents=True)
    (root / "LOC_synset_mapping.txt").write_text(
        "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"
    )
    for i, (w, h) in enumerate([(50, 40), (30, 60), (20, 20)], start=1):
        cv2.imwrite(
            str(root / "Data" / "CLS-LOC" / "val" / f"ILSVRC2012_val_{i:08d}.JPEG"), np.zeros((h, w, 3), np.uint8)
        )
    (root / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000002,n01443537 1 2 28 59 \n"
        "ILSVRC2012_val_00000001,n01440764 0 0 10 12 n01440764 20 5 49 39 \n"
        "ILSVRC2012_val_00000003,n01440764 3 4 5 6\n"
    )


def test_imagenet_kaggle_files_next_to_ilsvrc(ilsvrc: Path):
    """Kaggle's archive puts LOC_synset_mapping.txt and LOC_val_solution.csv next to ILSVRC/, not inside."""
    want = load_imagenet_val(ilsvrc, source="csv")
    for name in ("LOC_synset_mapping.txt", "LOC_val_solution.csv"):
        shutil.move(str(ilsvrc / name), str(ilsvrc.parent / name))
    assert load_imagenet_val(ilsvrc, source="csv") == want
    assert load_imagenet_val(ilsvrc.parent, source="csv") == want


def test_imagenet_csv_handmade_multi_box(tmp_path: Path):
    _handmade_ilsvrc(tmp_path)
    s = load_imagenet_val(tmp_path)
    assert [x.image_id for x in s] == [f"val/ILSVRC2012_val_{i:08d}.JPEG" for i in (1, 2, 3)]
    assert [x.label for x in s] == [0, 1, 0]
    assert s[0].boxes_xyxy.tolist() == [[0, 0, 10, 12], [20, 5, 49, 39]]
    assert [x.size_wh for x in s] == [(50, 40), (30, 60), (20, 20)]
    assert load_synsets(tmp_path / "LOC_synset_mapping.txt")[1] == ("n01443537", "goldfish, Carassius auratus")


@pytest.mark.parametrize(
    "line, why",
    [
        ("ILSVRC2012_val_00000001", "1 comma-separated fields, not 2"),
        ("ILSVRC2012_val_00000001,n01440764 0 0 10", "4 prediction tokens"),
        ("ILSVRC2012_val_00000001,n09999999 0 0 10 12", "n09999999 is not in LOC_synset_mapping.txt"),
        ("ILSVRC2012_val_00000001,n01440764 0 zero 10 12", "'zero' is not a number"),
        ("ILSVRC2012_val_00000002,n01440764 0 0 10 12", "listed twice"),
    ],
)
def test_imagenet_csv_malformed(tmp_path: Path, line: str, why: str):
    _handmade_ilsvrc(tmp_path)
    _edit_line(tmp_path / "LOC_val_solution.csv", 3, line)
    with pytest.raises(DatasetError) as e:
        load_imagenet_val(tmp_path)
    msg = str(e.value)
    assert f"{tmp_path / 'LOC_val_solution.csv'}:3:" in msg and repr(line) in msg and why in msg


def test_imagenet_csv_box_order_checked(tmp_path: Path):
    _handmade_ilsvrc(tmp_path)
    _edit_line(tmp_path / "LOC_val_solution.csv", 4, "ILSVRC2012_val_00000003,n01440764 9 4 5 6")
    with pytest.raises(DatasetError, match="x1 < x0"):
        load_imagenet_val(tmp_path)


@pytest.mark.parametrize(
    "line, why", [("n0144076 tench", "not a WordNet id"), ("n01440764 again", "already on line 1")]
)
def test_imagenet_synset_mapping_malformed(tmp_path: Path, line: str, why: str):
    _handmade_ilsvrc(tmp_path)
    _edit_line(tmp_path / "LOC_synset_mapping.txt", 2, line)
    with pytest.raises(DatasetError) as e:
        load_imagenet_val(tmp_path)
    assert "LOC_synset_mapping.txt:2:" in str(e.value) and repr(line) in str(e.value) and why in str(e.value)


@pytest.mark.parametrize("rel", ["LOC_synset_mapping.txt", "LOC_val_solution.csv", "Data/CLS-LOC/val"])
def test_imagenet_missing_parts(tmp_path: Path, rel: str):
    _handmade_ilsvrc(tmp_path)
    p = tmp_path / rel
    shutil.rmtree(p) if p.is_dir() else p.unlink()
    with pytest.raises(DatasetError) as e:
        load_imagenet_val(tmp_path)
    assert str(p) in str(e.value) and "--data-root" in str(e.value)


def test_imagenet_missing_root_image_and_bad_source(tmp_path: Path):
    with pytest.raises(DatasetError, match="--data-root"):
        load_imagenet_val(tmp_path / "none")
    _handmade_ilsvrc(tmp_path)
    (tmp_path / "Data" / "CLS-LOC" / "val" / "ILSVRC2012_val_00000002.JPEG").unlink()
    with pytest.raises(DatasetError, match="image not found.*ILSVRC2012_val_00000002.JPEG"):
        load_imagenet_val(tmp_path)
    with pytest.raises(ConfigError, match="'json'"):
        load_imagenet_val(tmp_path, source="json")  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="Annotations"):
        load_imagenet_val(tmp_path, source="xml")


def _first_xml(ilsvrc: Path) -> Path:
    return sorted((ilsvrc / "Annotations" / "CLS-LOC" / "val").glob("*.xml"))[0]


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t.replace("</annotation>", ""), r"\.xml:\d+: XML parse error"),
        (lambda t: t.replace("<size>", "<sizex>").replace("</size>", "</sizex>"), "no <size>"),
        (lambda t: t.replace("<width>", "<w>").replace("</width>", "</w>"), "missing <width>"),
        (lambda t: t.replace("<xmin>", "<xmin>a"), "is not a number"),
        (lambda t: t.replace("n9000000", "n8000000"), "is not in LOC_synset_mapping.txt"),
        (lambda t: t.split("<object>")[0] + "</annotation>\n", "no <object>"),
        (lambda t: t.replace("<bndbox>", "<box>").replace("</bndbox>", "</box>"), "has no <bndbox>"),
    ],
)
def test_imagenet_xml_errors(ilsvrc: Path, edit, match):
    f = _first_xml(ilsvrc)
    f.write_text(edit(f.read_text()))
    with pytest.raises(DatasetError, match=match) as e:
        load_imagenet_val(ilsvrc, source="xml")
    assert str(f) in str(e.value)


def test_imagenet_xml_folder_empty(ilsvrc: Path):
    for f in (ilsvrc / "Annotations" / "CLS-LOC" / "val").glob("*.xml"):
        f.unlink()
    with pytest.raises(DatasetError, match="no \\*.xml"):
        load_imagenet_val(ilsvrc)


# ------------------------------------------------------------------------------ wsolevaluation metadata


def _wsolevaluation_style_read(d: Path) -> tuple[list[str], dict, dict, dict]:
    """An independent reading that follows wsolevaluation's data_loaders.py semantics (split(','), int())."""
    ids = [ln.strip("\n") for ln in (d / "image_ids.txt").read_text().splitlines()]
    labels = {a: int(b) for a, b in (ln.split(",") for ln in (d / "class_labels.txt").read_text().splitlines())}
    sizes = {
        a: (int(w), int(h)) for a, w, h in (ln.split(",") for ln in (d / "image_sizes.txt").read_text().splitlines())
    }
    boxes: dict[str, list] = {}
    for ln in (d / "localization.txt").read_text().splitlines():
        a, *v = ln.split(",")
        boxes.setdefault(a, []).append([int(x) for x in v])
    return ids, labels, sizes, boxes


def test_wsol_metadata_round_trip_cub_and_imagenet(tmp_path: Path, demo_root: Path):
    for name, samples, data_root in (
        ("cub", load_cub(demo_root, "test"), demo_root / "CUB_200_2011" / "images"),
        ("ilsvrc", load_imagenet_val(demo_root), demo_root / "ILSVRC" / "Data" / "CLS-LOC"),
    ):
        out = write_wsol_metadata(samples, tmp_path / name)
        ids, labels, sizes, boxes = _wsolevaluation_style_read(out)
        assert ids == [s.image_id for s in samples]
        for s in samples:
            assert labels[s.image_id] == s.label and sizes[s.image_id] == s.size_wh
            assert boxes[s.image_id] == s.boxes_xyxy.astype(int).tolist()
        back = load_wsol_metadata(out, data_root)
        assert back == [WSOLSample(s.image_id, s.path, s.label, s.boxes_xyxy, s.size_wh, None) for s in samples]


def test_wsol_metadata_multi_box_lines(tmp_path: Path):
    samples = [
        WSOLSample(
            "a/1.jpg", tmp_path / "a/1.jpg", 3, np.array([[1, 2, 10, 12], [5, 5, 9.6, 9]], np.float32), (20, 30)
        ),
        WSOLSample("b/2.jpg", tmp_path / "b/2.jpg", 0, np.array([[0, 0, 4, 4]], np.float32), (8, 8)),
    ]
    write_wsol_metadata(samples, tmp_path / "m")
    assert (tmp_path / "m" / "localization.txt").read_text() == "a/1.jpg,1,2,10,12\na/1.jpg,5,5,10,9\nb/2.jpg,0,0,4,4\n"
    back = load_wsol_metadata(tmp_path / "m", tmp_path, check_images=False)
    assert back[0].boxes_xyxy.tolist() == [[1, 2, 10, 12], [5, 5, 10, 9]] and back[1].label == 0


@pytest.fixture
def meta(tmp_path: Path, demo_root: Path) -> Path:
    return write_wsol_metadata(load_cub(demo_root, "test"), tmp_path / "meta")


@pytest.mark.parametrize("name", ["image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt"])
def test_wsol_metadata_missing_file(meta: Path, demo_root: Path, name: str):
    (meta / name).unlink()
    with pytest.raises(DatasetError) as e:
        load_wsol_metadata(meta, demo_root / "CUB_200_2011" / "images")
    assert str(meta / name) in str(e.value) and "--data-root" in str(e.value)


@pytest.mark.parametrize(
    "name, line_fn, why",
    [
        ("image_ids.txt", lambda i: f"{i},0", "a comma"),
        ("class_labels.txt", lambda i: f"{i}", "1 comma-separated fields, not 2"),
        ("class_labels.txt", lambda i: f"{i},one", "'one' is not a number"),
        ("class_labels.txt", lambda i: f"{i},-1", "negative label"),
        ("class_labels.txt", lambda i: "zzz.jpg,1", "is not in image_ids.txt"),
        ("image_sizes.txt", lambda i: f"{i},64", "2 comma-separated fields, not 3"),
        ("image_sizes.txt", lambda i: f"{i},64.5,64", "not an integer"),
        ("localization.txt", lambda i: f"{i},1,2,3", "4 comma-separated fields, not 5"),
        ("localization.txt", lambda i: f"{i},m.png,ig.png", "OpenImages mask form"),
        ("localization.txt", lambda i: f"{i},1,2,x,4", "'x' is not a number"),
    ],
)
def test_wsol_metadata_malformed(meta: Path, demo_root: Path, name: str, line_fn, why: str):
    first_id = (meta / "image_ids.txt").read_text().splitlines()[0]
    line = line_fn(first_id)
    _edit_line(meta / name, 1, line)
    with pytest.raises(DatasetError) as e:
        load_wsol_metadata(meta, demo_root / "CUB_200_2011" / "images")
    msg = str(e.value)
    assert f"{meta / name}:1:" in msg and repr(line) in msg and why in msg


def test_wsol_metadata_duplicates_missing_entries_and_images(meta: Path, demo_root: Path):
    data_root = demo_root / "CUB_200_2011" / "images"
    ids = (meta / "image_ids.txt").read_text().splitlines()
    _edit_line(meta / "image_ids.txt", 2, ids[0])
    with pytest.raises(DatasetError, match=r"image_ids.txt:2: .*already on line 1"):
        load_wsol_metadata(meta, data_root)
    _edit_line(meta / "image_ids.txt", 2, ids[1])
    _edit_line(meta / "class_labels.txt", 2, f"{ids[0]},1")
    with pytest.raises(DatasetError, match=r"class_labels.txt:2: .*already on line 1"):
        load_wsol_metadata(meta, data_root)
    _edit_line(meta / "class_labels.txt", 2, None)
    with pytest.raises(DatasetError, match=rf"class_labels.txt: no line for {ids[1]} \(image_ids.txt:2\)"):
        load_wsol_metadata(meta, data_root)
    (meta / "class_labels.txt").write_text((meta / "class_labels.txt").read_text() + f"{ids[1]},0\n")
    assert len(load_wsol_metadata(meta, data_root)) == len(ids)
    with pytest.raises(DatasetError, match="image not found.*--data-root"):
        load_wsol_metadata(meta, demo_root / "CUB_200_2011")  # the wrong data root
    with pytest.raises(DatasetError, match="--data-root"):
        load_wsol_metadata(meta, demo_root / "nowhere")
    with pytest.raises(DatasetError, match="--data-root"):
        load_wsol_metadata(meta.parent / "no_meta", data_root)
    lines = (meta / "localization.txt").read_text().splitlines()
    a, x0, y0, x1, y1 = lines[0].split(",")
    _edit_line(meta / "localization.txt", 1, f"{a},{x1},{y0},{x0},{y1}")
    with pytest.raises(DatasetError, match=r"localization.txt:1: box .* x1 < x0"):
        load_wsol_metadata(meta, data_root)


def test_write_wsol_metadata_rejects_what_the_format_cannot_hold(tmp_path: Path):
    box = np.array([[0, 0, 1, 1]], np.float32)
    with pytest.raises(DatasetError, match="comma"):
        write_wsol_metadata([WSOLSample("a,b.jpg", tmp_path, 0, box, (2, 2))], tmp_path / "m")
    with pytest.raises(DatasetError, match="no box"):
        write_wsol_metadata([WSOLSample("a.jpg", tmp_path, 0, np.zeros((0, 4), np.float32), (2, 2))], tmp_path / "m")
    with pytest.raises(DatasetError, match="twice"):
        write_wsol_metadata([WSOLSample("a.jpg", tmp_path, 0, box, (2, 2))] * 2, tmp_path / "m")
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------------------ caption tokens


@pytest.mark.parametrize(
    "caption, tokens",
    [
        ("A man riding a wave on top of a surfboard.", "a man riding a wave on top of a surfboard".split()),
        ("A woman's hand holding a cell-phone", ["a", "woman", "s", "hand", "holding", "a", "cell", "phone"]),
        ("There are 3 giraffes\tnear a tree ", ["there", "are", "3", "giraffes", "near", "a", "tree"]),
        ("a plate with a sandwich , chips and a pickle", "a plate with a sandwich chips and a pickle".split()),
        ("A sign that says \u201cSTOP\u201d.", ["a", "sign", "that", "says", "stop"]),
        # only [a-z0-9] make words: non-ASCII letters split them (the rule vocabularies were built with)
        ("A caf\u00e9 au lait", ["a", "caf", "au", "lait"]),
        ("", []),
    ],
)
def test_tokenize_karpathy_style(caption: str, tokens: list[str]):
    assert tokenize(caption) == tokens


def test_coco_json_reader_tokens_equal_the_karpathy_file(demo_root: Path):
    """The reader tokenizes the COCO json captions the way the generator wrote the Karpathy file's tokens."""
    root = demo_root / "coco"
    stored = {
        im["cocoid"]: [s["tokens"] for s in im["sentences"]]
        for im in json.loads((root / "dataset_coco.json").read_text())["images"]
    }
    items = load_coco_captions(root, "val", source="coco")
    assert len(items) == DEMO_KWARGS["coco_val_images"]
    for it in items:
        assert it.tokens == stored[it.image_id] and len(it.tokens) == 5
