"""Test a trained detector on VOC07 test on mmengine's Runner and write its result record (tools/test_det.py).

config + detector checkpoint -> `Runner.test()` with VOCMetric (VOC07 11-point) -> result record with mAP and
per-class AP (percent) and the BACKBONE checkpoint's sha256 (read from the detector checkpoint's meta).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from mmengine.config import Config
from mmengine.model import is_model_wrapper

from ..checkpoints import BACKBONE_META_KEY, check_state_fits, load_backbone_state, safe_torch_load
from ..distributed import Launcher, prepare_launcher
from ..errors import CheckpointError, ConfigError
from ..io import atomic_savez, sha256_file
from ..results import (
    PER_IMAGE_DETECTIONS,
    TRAIN_SEED,
    TRAIN_SEED_META,
    WrittenRecord,
    data_identity,
    make_record,
    write_record,
)
from ..runner import build_runner, load_config
from .backbone import adapt_config_to_arch, backbone_provenance, clear_backbone_init, configured_backbone_path
from .data import check_voc_data, iter_xml_datasets, set_data_root
from .train import CONFIGS_HINT

logger = logging.getLogger(__name__)
EvalMode = Literal["11points", "area"]


def detector_name(cfg: Config) -> str:
    """'faster_rcnn' (FPN), 'faster_rcnn_c4', 'ssd<input size>' or the model type in lower case (records)."""
    model = cfg.model
    if model.type == "FasterRCNN":
        return "faster_rcnn" if model.get("neck") else "faster_rcnn_c4"
    head = model.get("bbox_head") or {}
    if str(head.get("type", "")).startswith("SSDHead"):
        return f"ssd{head.anchor_generator.get('input_size', 300)}"
    return str(model.type).lower()


def read_detector_meta(checkpoint: str | os.PathLike, trust: bool = False) -> tuple[dict, dict]:
    """(meta, state_dict) of a detector checkpoint that mmengine saved, loaded with the safe loader."""
    obj = safe_torch_load(checkpoint, trust=trust)
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise CheckpointError(
            f"{checkpoint} is not a detector checkpoint saved by mmengine (no "
            f"'state_dict'); pass the epoch_N.pth / iter_N.pth that tools/train_det.py "
            f"wrote"
        )
    return obj.get("meta") or {}, obj["state_dict"]


def _recorded_backbone(
    meta: dict, cfg: Config, backbone: str | os.PathLike | None, checkpoint: str | os.PathLike, trust: bool
) -> dict[str, Any]:
    """The backbone a detector started from: its checkpoint meta, else --backbone, else the config's path."""
    if backbone is None and BACKBONE_META_KEY in meta:
        return dict(meta[BACKBONE_META_KEY])
    src = str(backbone) if backbone is not None else configured_backbone_path(cfg)
    if not src or not Path(src).is_file():
        raise CheckpointError(
            f"{checkpoint} does not record which backbone it started from (it was not trained with "
            f"tools/train_det.py) and the config's backbone checkpoint {src!r} is not a file: pass "
            f"--backbone CKPT (the classification checkpoint the detector was fine-tuned from)"
        )
    loaded = load_backbone_state(src, trust=trust)
    logger.warning("%s has no backbone record; attributing it to %s (sha256 %s)", checkpoint, src, loaded.sha256[:12])
    return backbone_provenance(loaded)


@dataclass
class EvalOutcome(WrittenRecord):
    """What test_det produced: the record, where it went, and mmengine's raw metrics."""

    metrics: dict[str, float]


def evaluate_detector(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    cfg_options: dict[str, Any] | None = None,
    eval_mode: EvalMode | None = None,
    seed: int = 0,
    backbone: str | os.PathLike | None = None,
    trust: bool = False,
    launcher: Launcher = "none",
    data_root: str | os.PathLike | None = None,
) -> EvalOutcome:
    """Evaluate a trained detector on the config's test set (VOC07 test) and write `<out>/results.json`.

    mAP and per-class AP are percentages (VOCMetric's fractions x 100); eval_mode None keeps the config's
    ('11points' = VOC07, as the paper). The record's checkpoint block is the BACKBONE checkpoint.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"detector checkpoint {checkpoint} not found: pass a .pth that train_det wrote")
    cfg = load_config(config, cfg_options, where=CONFIGS_HINT)
    if data_root is not None:
        set_data_root(cfg, data_root)
    check_voc_data(cfg, splits=("test",))
    meta, state = read_detector_meta(checkpoint, trust=trust)
    provenance = _recorded_backbone(meta, cfg, backbone, checkpoint, trust)
    adapt_config_to_arch(cfg, provenance["arch"])
    clear_backbone_init(cfg)

    evaluator = cfg.test_evaluator
    if evaluator.get("type") == "VOCMetric":
        evaluator.type = "VOCMetricPerClass"
    if eval_mode is not None:
        if eval_mode not in ("11points", "area"):
            raise ConfigError(f"--eval-mode {eval_mode!r}: choose '11points' (VOC07) or 'area' (VOC2012 style)")
        evaluator.eval_mode = eval_mode
    out = Path(out) if out is not None else checkpoint.parent / f"test_{checkpoint.stem}"
    cfg.work_dir = str(out)
    cfg.load_from = str(checkpoint)
    cfg.resume = False
    cfg.randomness = dict(seed=int(seed), deterministic=False)
    prepare_launcher(cfg, launcher)

    runner = build_runner(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    check_state_fits(
        model,
        state,
        checkpoint,
        "the config's detector",
        hint="Test with the config the detector was trained with (train_det dumps it into its work dir)",
    )
    metrics = runner.test()
    per_image = getattr(next(iter(runner.test_evaluator.metrics), None), "per_image_results", None)
    image_ids = [str(gt.get("img_id")) for gt, _ in per_image] if per_image else None
    record = make_detection_record(
        metrics, cfg, provenance, checkpoint, image_ids=image_ids, train_seed=meta.get(TRAIN_SEED_META)
    )
    path = write_record(out, record)
    if per_image:
        write_per_image_detections(out / PER_IMAGE_DETECTIONS, per_image, record["eval_mode"], record["iou_thr"])
    logger.info("VOC mAP %.2f (%s) -> %s", record["metrics"]["mAP"], record["eval_mode"], path)
    return EvalOutcome(record=record, path=path, metrics=dict(metrics))


def summary_lines(outcome: EvalOutcome) -> list[str]:
    """What a detection test prints (tools/test_det.py, tools/train_det.py --test): the mAP line, then each class's
    AP."""
    rec = outcome.record
    lines = [f"{rec['detector']} VOC07 test mAP ({rec['eval_mode']}): {rec['metrics']['mAP']:.2f}  -> {outcome.path}"]
    lines += [f"  {name:<12s} {ap:6.2f}" for name, ap in rec["per_class_ap"].items()]
    return lines


def write_per_image_detections(path: Path, per_image: list, eval_mode: str, iou_thr: Any) -> Path:
    """Every test image's ground truth and detections as flat arrays (no pickle), so that the report can
    recompute mAP on resampled images (cutmix_transfer.bootstrap.VOCMapStatistic)."""
    det_image, det_label, det_boxes, gt_image, gt_label, gt_boxes, gt_ignore = [], [], [], [], [], [], []
    for i, (gt, dets) in enumerate(per_image):
        for c, d in enumerate(dets):
            d = np.asarray(d, dtype=np.float32).reshape(-1, 5)
            det_image += [i] * len(d)
            det_label += [c] * len(d)
            det_boxes.append(d)
        for ignore, boxes, labels in ((0, gt["bboxes"], gt["labels"]), (1, gt["bboxes_ignore"], gt["labels_ignore"])):
            boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
            gt_image += [i] * len(boxes)
            gt_label += [int(x) for x in np.asarray(labels).reshape(-1)]
            gt_ignore += [ignore] * len(boxes)
            gt_boxes.append(boxes)
    iou = float(iou_thr[0] if isinstance(iou_thr, (list, tuple)) else iou_thr)
    atomic_savez(
        path,
        image_ids=np.array([str(gt.get("img_id")) for gt, _ in per_image]),
        num_classes=np.array(len(per_image[0][1]) if per_image else 0),
        det_image=np.array(det_image, dtype=np.int64),
        det_label=np.array(det_label, dtype=np.int64),
        det_boxes=np.concatenate(det_boxes) if det_boxes else np.zeros((0, 5), np.float32),
        gt_image=np.array(gt_image, dtype=np.int64),
        gt_label=np.array(gt_label, dtype=np.int64),
        gt_boxes=np.concatenate(gt_boxes) if gt_boxes else np.zeros((0, 4), np.float32),
        gt_ignore=np.array(gt_ignore, dtype=np.int64),
        eval_mode=np.array(str(eval_mode)),
        iou_thr=np.array(iou),
    )
    return path


def make_detection_record(
    metrics: dict[str, float],
    cfg: Config,
    backbone: dict[str, Any],
    checkpoint: str | os.PathLike,
    image_ids: list[str] | None = None,
    train_seed: int | None = None,
) -> dict[str, Any]:
    """A 'detection' result record from VOCMetric(PerClass) output (fractions) -> percentages; `image_ids` (the
    evaluated images) give the record's data identity, else the test list file's ids when it can be read;
    `train_seed`: the fine-tuning run's seed (the report's replicates), None when the checkpoint does not say."""
    mean = next((v for k, v in metrics.items() if k.split("/")[-1] == "mAP"), None)
    if mean is None:
        raise ConfigError(
            f"the test evaluator returned no mAP (got {sorted(metrics)}): use "
            f"test_evaluator=dict(type='VOCMetricPerClass', metric='mAP')"
        )
    per_class = {
        k.split("/")[-1][3:]: 100.0 * float(v) for k, v in metrics.items() if k.split("/")[-1].startswith("AP_")
    }
    test_sets = list(iter_xml_datasets(cfg.test_dataloader.get("dataset")))
    data_root = test_sets[0].get("data_root") if test_sets else None
    ann_file = test_sets[0].get("ann_file") if test_sets else None
    evaluator = cfg.test_evaluator
    block = {k: backbone.get(k) for k in ("path", "sha256", "arch", "method")}
    list_file = Path(str(data_root or ""), str(ann_file or ""))
    if image_ids is None and ann_file and list_file.is_file():
        image_ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    data = {"data": data_identity("voc2007", "test", data_root, image_ids)} if image_ids is not None else {}
    return make_record(
        "detection",
        block,
        dataset="voc2007",
        split="test",
        metrics={"mAP": 100.0 * float(mean)},
        **data,
        detector=detector_name(cfg),
        per_class_ap=per_class,
        eval_mode=evaluator.get("eval_mode", "11points"),
        iou_thr=evaluator.get("iou_thrs", 0.5),
        data_root=data_root,
        ann_file=ann_file,
        backbone_source_format=backbone.get("source_format"),
        detector_checkpoint={"path": str(checkpoint), "sha256": sha256_file(checkpoint)},
        config=str(cfg.filename or ""),
        **{TRAIN_SEED: None if train_seed is None else int(train_seed)},
    )
