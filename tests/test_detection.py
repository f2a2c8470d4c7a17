"""Detection transfer on the generated VOC layout: backbone weights really transferred (FPN, SSD, C4;
ResNet-18 and -50), clear errors for missing data, and a few CPU iterations of train + test for Faster R-CNN
and SSD300 through the tools, with the result record checked against its inputs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet")
torchvision = pytest.importorskip("torchvision")

from helpers import REPO  # noqa: E402

import tools.test_det as test_det  # noqa: E402
import tools.train_det as train_det  # noqa: E402
from cutmix_transfer.checkpoints import BACKBONE_META_KEY, safe_torch_load  # noqa: E402
from cutmix_transfer.cli import MMEngineNoteFilter  # noqa: E402
from cutmix_transfer.detection import (  # noqa: E402
    VOCMetricPerClass,
    adapt_config_to_arch,
    check_voc_data,
    prepare_training,
    report_backbone_keys,
    stage_channels,
)
from cutmix_transfer.detection.backbone import clear_backbone_init  # noqa: E402
from cutmix_transfer.detection.evaluate import _recorded_backbone  # noqa: E402
from cutmix_transfer.errors import CheckpointError, ConfigError, DatasetError  # noqa: E402
from cutmix_transfer.io import sha256_file  # noqa: E402
from cutmix_transfer.results import PER_IMAGE_DETECTIONS  # noqa: E402
from cutmix_transfer.runner import build_runner, load_config  # noqa: E402

FRCNN = REPO / "configs" / "voc_faster_rcnn_cutmix.py"
SSD = REPO / "configs" / "voc_ssd300_cutmix.py"
C4 = REPO / "configs" / "voc_faster_rcnn_c4_cutmix.py"
FRCNN_DEMO = REPO / "configs" / "voc_faster_rcnn_demo.py"
SSD_DEMO = REPO / "configs" / "voc_ssd300_demo.py"


@pytest.fixture(scope="module")
def voc_root(demo_root: Path) -> Path:
    return demo_root / "VOCdevkit"


def _write_cutmix_style_checkpoint(arch: str, folder: Path) -> Path:
    """A CutMix-PyTorch style checkpoint ({'arch', 'state_dict' with 'module.' keys, ...}) of random weights,
    BN statistics randomised too, so that equality after init cannot come from a default initialisation."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=1000)
    sd = model.state_dict()
    for k, v in sd.items():
        if k.endswith(("running_mean", "running_var")):
            v.copy_(torch.rand_like(v) + 0.5)
    path = folder / f"{arch}_cutmix.pth.tar"
    torch.save(
        {"epoch": 300, "arch": arch, "best_err1": 21.4, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path
    )
    return path


@pytest.fixture(scope="module", params=["resnet18", "resnet50"])
def backbone_ckpt(request, tmp_path_factory) -> Path:
    return _write_cutmix_style_checkpoint(request.param, tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def configs() -> dict:
    """The three detection configs, parsed once (tests take deep copies)."""
    return {"faster_rcnn": load_config(FRCNN), "ssd300": load_config(SSD), "faster_rcnn_c4": load_config(C4)}


@pytest.fixture(scope="module")
def r18_ckpt(tmp_path_factory) -> Path:
    return _write_cutmix_style_checkpoint("resnet18", tmp_path_factory.mktemp("ckpt18"))


@pytest.mark.parametrize("name", ["faster_rcnn", "ssd300", "faster_rcnn_c4"])
def test_detector_backbone_equals_checkpoint_after_init(name, configs, backbone_ckpt, voc_root, tmp_path):
    from mmdet.registry import MODELS

    prepared = prepare_training(
        copy.deepcopy(configs[name]), backbone=backbone_ckpt, work_dir=tmp_path, data_root=voc_root
    )
    model = MODELS.build(prepared.cfg.model)
    model.init_weights()
    raw = torch.load(backbone_ckpt, weights_only=True)["state_dict"]
    expected = {k[len("module.") :]: v for k, v in raw.items()}
    targets = {"backbone": model.backbone.state_dict()}
    if name == "faster_rcnn_c4":
        targets["shared_head"] = model.roi_head.shared_head.state_dict()
    compared = 0
    for key, value in expected.items():
        if key.startswith("fc."):
            assert all(key not in sd for sd in targets.values())
            continue
        owners = [sd for sd in targets.values() if key in sd]
        assert len(owners) == 1, key  # every backbone tensor lands in exactly one module
        assert torch.equal(owners[0][key], value), key
        compared += 1
    assert compared == len(expected) - 2
    # nothing in the backbone modules stayed at its own initialisation
    assert sum(len(sd) for sd in targets.values()) == compared


def test_key_report_names_loaded_and_left_out(configs, backbone_ckpt, voc_root, tmp_path):
    prepared = prepare_training(
        copy.deepcopy(configs["faster_rcnn"]), backbone=backbone_ckpt, work_dir=tmp_path, data_root=voc_root
    )
    runner = build_runner(prepared.cfg)
    assert any(isinstance(f, MMEngineNoteFilter) for f in runner.logger.filters)  # quiet about mmengine's notes
    report = report_backbone_keys(runner, prepared)
    n = len(prepared.backbone_state)
    assert sorted(report.left_out) == ["fc.bias", "fc.weight"]
    assert len(report.loaded) == n - 2 and not report.missing and not report.shape_mismatch
    written = json.loads((tmp_path / "backbone_keys.json").read_text())
    assert written["left_out"] == report.left_out
    assert written["backbone"]["sha256"] == sha256_file(backbone_ckpt)
    converted = torch.load(tmp_path / "backbone_mmdet.pth", weights_only=True)
    assert not any(k.startswith("fc.") for k in converted["state_dict"])
    assert len(converted["state_dict"]) == n - 2


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_adapt_config_channels_follow_depth(arch, configs):
    cfg = copy.deepcopy(configs["faster_rcnn"])
    adapt_config_to_arch(cfg, arch)
    ch = stage_channels(arch)
    assert cfg.model.neck.in_channels == list(ch)
    cfg = copy.deepcopy(configs["ssd300"])
    adapt_config_to_arch(cfg, arch)
    assert tuple(cfg.model.neck.in_channels) == ch[1:]
    assert tuple(cfg.model.bbox_head.in_channels) == ch[1:] + (512, 256, 256)
    cfg = copy.deepcopy(configs["faster_rcnn_c4"])
    adapt_config_to_arch(cfg, arch)
    assert cfg.model.rpn_head.in_channels == ch[2] and cfg.model.roi_head.bbox_head.in_channels == ch[3]
    with pytest.raises(ConfigError, match="vgg16"):
        adapt_config_to_arch(cfg, "vgg16")


def test_ssd300_resnet_feature_maps_match_vgg_ssd300_anchors(configs):
    """configs/det/ssd300_r50_voc0712.py's derivation: 38/19/10/5/3/1 maps at 300 px, VGG SSD300's grid."""
    from mmdet.registry import MODELS

    cfg = copy.deepcopy(configs["ssd300"])
    adapt_config_to_arch(cfg, "resnet18")
    model = MODELS.build(cfg.model).eval()
    with torch.inference_mode():
        feats = model.extract_feat(torch.zeros(1, 3, 300, 300))
    assert [f.shape[-1] for f in feats] == [38, 19, 10, 5, 3, 1]
    assert [f.shape[1] for f in feats] == [128, 256, 512, 512, 256, 256]
    gen = model.bbox_head.prior_generator
    assert gen.num_base_priors == [4, 6, 6, 6, 4, 4]


def test_missing_voc_data_names_the_path(tmp_path):
    cfg = load_config(FRCNN, {"val_dataloader.dataset.data_root": str(tmp_path) + "/"})
    with pytest.raises(DatasetError, match="VOC2007/ImageSets/Main/test.txt"):
        check_voc_data(cfg, splits=("val",))


def test_train_tool_reports_missing_data_in_one_line(tmp_path, r18_ckpt, capsys):
    rc = train_det.main(
        [str(FRCNN), "--backbone", str(r18_ckpt), "--work-dir", str(tmp_path / "w"), "--data-root", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert f"{tmp_path}/VOC2007/ImageSets/Main/trainval.txt" in err[0]
    assert f"{tmp_path}/VOC2012/JPEGImages" in err[0]


def test_amp_without_gpu_is_a_config_error(configs, tmp_path, r18_ckpt, voc_root):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --amp is valid here")
    with pytest.raises(ConfigError, match="--amp"):
        prepare_training(
            copy.deepcopy(configs["faster_rcnn"]), backbone=r18_ckpt, work_dir=tmp_path, data_root=voc_root, amp=True
        )


def _cli_options(voc_root: Path, extra: list[str]) -> list[str]:
    return ["--data-root", str(voc_root), "--cfg-options", *extra]


# Faster R-CNN at 128 px, set through --cfg-options on the demo config's pipelines (train: Resize is step 2,
# test: step 1), with fewer proposals and sampled RoIs (its RoI head dominates CPU time); SSD stays at 300 px
# (its anchors need it) with a shorter candidate list before NMS. 4 + 4 trainval images, batch 4: 2 iterations
# per epoch; validation off (the test tool evaluates).
SMALL_FRCNN = (
    [f"train_dataloader.dataset.dataset.datasets.{i}.pipeline.2.scale=(128,128)" for i in (0, 1)]
    + [f"{s}_dataloader.dataset.pipeline.1.scale=(128,128)" for s in ("val", "test")]
    + [
        "model.train_cfg.rpn_proposal.max_per_img=100",
        "model.train_cfg.rcnn.sampler.num=64",
        "model.test_cfg.rpn.nms_pre=200",
        "model.test_cfg.rpn.max_per_img=50",
    ]
)
SMALL_SSD = ["model.test_cfg.nms_pre=100", "model.test_cfg.max_per_img=50"]
FEW = [f"train_dataloader.dataset.dataset.datasets.{i}.indices=4" for i in (0, 1)] + [
    "train_dataloader.batch_size=4",
    "val_cfg=None",
    "val_dataloader=None",
    "val_evaluator=None",
]
RUNS = {"faster_rcnn": (FRCNN_DEMO, SMALL_FRCNN), "ssd300": (SSD_DEMO, SMALL_SSD)}


@pytest.fixture()
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _train_det(config: Path, backbone: Path, work: Path, *args: str) -> int:
    """tools/train_det.py in-process: `config` with the `backbone` checkpoint into `work`, then `args`."""
    return train_det.main([str(config), "--backbone", str(backbone), "--work-dir", str(work), *args])


@pytest.mark.slow
@pytest.mark.parametrize("detector", sorted(RUNS))
def test_train_and_test_tools_on_demo_voc(detector, r18_ckpt, voc_root, tmp_path, capsys, one_thread):
    config, extra = RUNS[detector]
    work = tmp_path / "work"
    common = FEW + ["train_cfg.max_epochs=1", "default_hooks.checkpoint.interval=1"]
    assert _train_det(config, r18_ckpt, work, "--seed", "1", "--test", *_cli_options(voc_root, extra + common)) == 0
    in_process = capsys.readouterr().out
    ckpt = work / "epoch_1.pth"
    meta = safe_torch_load(ckpt)["meta"]
    assert meta[BACKBONE_META_KEY]["sha256"] == sha256_file(r18_ckpt)
    assert meta[BACKBONE_META_KEY]["arch"] == "resnet18"

    out = tmp_path / "test"
    assert test_det.main([str(config), str(ckpt), "--out", str(out), *_cli_options(voc_root, extra)]) == 0
    rec = json.loads((out / "results.json").read_text())
    assert rec["kind"] == "detection" and rec["detector"] == detector and rec["eval_mode"] == "11points"
    assert rec["checkpoint"]["sha256"] == sha256_file(r18_ckpt) and rec["checkpoint"]["method"] == "cutmix"
    assert rec["detector_checkpoint"]["sha256"] == sha256_file(ckpt)
    assert rec["train_seed"] == 1  # train_det --seed 1, from the fine-tuned checkpoint's meta
    per_class = rec["per_class_ap"]
    # classes with ground truth in the 4 demo test images; mAP is their mean (VOC07 11-point, percent)
    assert per_class and set(per_class) <= {"aeroplane", "bicycle", "bird", "boat"}
    assert all(0.0 <= v <= 100.0 for v in per_class.values())
    assert rec["metrics"]["mAP"] == pytest.approx(sum(per_class.values()) / len(per_class), abs=1e-6)
    assert f"{rec['metrics']['mAP']:.2f}" in capsys.readouterr().out
    # train_det --test: the same record and per-image detections as test_det on the last checkpoint, printed alike
    same = json.loads((work / "test" / "results.json").read_text())
    for key in ("metrics", "per_class_ap", "checkpoint", "detector_checkpoint", "train_seed", "eval_mode", "data"):
        assert same[key] == rec[key], key
    with np.load(work / "test" / PER_IMAGE_DETECTIONS) as a, np.load(out / PER_IMAGE_DETECTIONS) as b:
        assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert f"test mAP (11points): {rec['metrics']['mAP']:.2f}  -> {work / 'test' / 'results.json'}" in in_process

    if detector == "faster_rcnn":  # resume from the work dir's last checkpoint (mmengine's file, safe-loaded)
        more = extra + FEW + ["train_cfg.max_epochs=2", "default_hooks.checkpoint.interval=1"]
        assert _train_det(config, r18_ckpt, work, "--resume", *_cli_options(voc_root, more)) == 0
        resumed = safe_torch_load(work / "epoch_2.pth")["meta"]
        assert resumed["epoch"] == 2 and resumed["iter"] == 2 * meta["iter"]


def test_demo_voc_ground_truth_fed_back_as_predictions_gives_100(voc_root):
    """Through mmdet's reading of the VOC07 test XML (difficult -> ignored, 1-based boxes) and packing."""
    from mmdet.datasets import VOCDataset
    from mmengine.structures import InstanceData

    pipeline = [
        dict(type="LoadImageFromFile", _scope_="mmdet"),
        dict(type="LoadAnnotations", with_bbox=True, _scope_="mmdet"),
        dict(type="PackDetInputs", _scope_="mmdet"),
    ]
    ds = VOCDataset(
        data_root=str(voc_root),
        ann_file="VOC2007/ImageSets/Main/test.txt",
        data_prefix=dict(sub_data_root="VOC2007/"),
        test_mode=True,
        pipeline=pipeline,
    )
    metric = VOCMetricPerClass(metric="mAP", eval_mode="11points")
    metric.dataset_meta = ds.metainfo
    n_boxes = 0
    for i in range(len(ds)):
        sample = ds[i]["data_samples"]
        gt = sample.gt_instances
        sample.pred_instances = InstanceData(
            bboxes=gt.bboxes.clone(), labels=gt.labels.clone(), scores=torch.ones(len(gt))
        )
        n_boxes += len(gt)
        metric.process({}, [sample.to_dict()])
    res = metric.compute_metrics(metric.results)
    assert n_boxes > 0 and res["mAP"] == pytest.approx(1.0)
    # a prediction set missing one box per image scores lower: the metric is not constant
    metric.results.clear()
    for i in range(len(ds)):
        sample = ds[i]["data_samples"]
        gt = sample.gt_instances[1:]
        sample.pred_instances = InstanceData(
            bboxes=gt.bboxes.clone(), labels=gt.labels.clone(), scores=torch.ones(len(gt))
        )
        metric.process({}, [sample.to_dict()])
    assert metric.compute_metrics(metric.results)["mAP"] < 1.0


def test_backbone_provenance_for_checkpoints_without_record(configs, r18_ckpt, tmp_path):
    """test_det: a detector checkpoint with no backbone record needs --backbone, whose sha256 goes in the record."""
    cfg = copy.deepcopy(configs["faster_rcnn"])
    recorded = {BACKBONE_META_KEY: {"path": "x.pth", "sha256": "ab" * 32, "arch": "resnet50", "method": None}}
    assert _recorded_backbone(recorded, cfg, None, "det.pth", False)["sha256"] == "ab" * 32
    info = _recorded_backbone({}, cfg, r18_ckpt, "det.pth", False)
    assert info["sha256"] == sha256_file(r18_ckpt) and info["arch"] == "resnet18" and info["method"] == "cutmix"
    cfg.backbone_checkpoint = str(tmp_path / "absent.pth")
    with pytest.raises(CheckpointError, match="--backbone"):
        _recorded_backbone({}, cfg, None, "det.pth", False)


# ----------------------------------------------------------------------------------------------- bad VOC files
def _voc_copy(voc_root: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(voc_root, tmp_path / "VOCdevkit"))


def _first_id(voc: Path, year: str, split: str) -> str:
    return (voc / year / "ImageSets" / "Main" / f"{split}.txt").read_text().split()[0]


def _break(voc: Path, how: str) -> Path:
    """Damage the first VOC2007 trainval image's annotation or image in one of the ways a real set breaks."""
    img_id = _first_id(voc, "VOC2007", "trainval")
    xml = voc / "VOC2007" / "Annotations" / f"{img_id}.xml"
    text = xml.read_text()
    if how == "truncated_xml":
        xml.write_text(text[: len(text) // 2])
    elif how == "non_numeric_box":
        xml.write_text(text.replace("<xmin>", "<xmin>x", 1))
    elif how == "missing_xml":
        xml.unlink()
    elif how == "corrupt_image":
        path = voc / "VOC2007" / "JPEGImages" / f"{img_id}.jpg"
        path.write_bytes(path.read_bytes()[:20])
        return path
    return xml


def _truncated_line(xml: Path) -> int:
    """The line where Python's own parser stops on the damaged file (independent of the tool)."""
    import xml.etree.ElementTree as ET

    try:
        ET.parse(xml)
    except ET.ParseError as e:
        return e.position[0]
    raise AssertionError(f"{xml} parses")


@pytest.mark.parametrize("how", ["truncated_xml", "non_numeric_box", "missing_xml", "corrupt_image"])
def test_train_tool_reports_a_bad_voc_file_in_one_line(how, r18_ckpt, voc_root, tmp_path, capsys, one_thread):
    voc = _voc_copy(voc_root, tmp_path)
    bad = _break(voc, how)
    opts = SMALL_FRCNN + FEW + ["train_cfg.max_epochs=1"]
    rc = train_det.main(
        [str(FRCNN_DEMO), "--backbone", str(r18_ckpt), "--work-dir", str(tmp_path / "w"), *_cli_options(voc, opts)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), err[-5:]
    assert str(bad) in err[0]
    if how == "truncated_xml":
        assert f"line {_truncated_line(bad)}," in err[0] and "not valid XML" in err[0]


def test_test_tool_reports_invalid_voc_xml_in_one_line(r18_ckpt, voc_root, tmp_path, capsys):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    voc = _voc_copy(voc_root, tmp_path)
    xml = voc / "VOC2007" / "Annotations" / f"{_first_id(voc, 'VOC2007', 'test')}.xml"
    xml.write_text(xml.read_text()[:40])
    cfg = load_config(FRCNN_DEMO)
    adapt_config_to_arch(cfg, "resnet18")
    clear_backbone_init(cfg)
    init_default_scope("mmdet")
    ckpt = tmp_path / "detector.pth"  # an untrained detector: the dataset fails before any inference
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict(), "meta": {}}, ckpt)
    rc = test_det.main(
        [str(FRCNN_DEMO), str(ckpt), "--backbone", str(r18_ckpt), "--out", str(tmp_path / "t"), "--data-root", str(voc)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err[-5:]
    assert str(xml) in err[0] and f"line {_truncated_line(xml)}," in err[0] and "not valid XML" in err[0]
