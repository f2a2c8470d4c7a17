"""Train and test an mmdet detector from a backbone checkpoint, on mmengine's Runner (what the tools call).

Train: config -> VOC files checked -> backbone checkpoint loaded (core loader, safe) -> config adapted to its
depth -> `work_dir/backbone_mmdet.pth` (atomic) as the backbone's `Pretrained` init -> key report logged and
written -> `Runner.train()`; every saved checkpoint carries the backbone's provenance
(BackboneProvenanceHook).
Test: config + detector checkpoint -> `Runner.test()` with VOCMetric (VOC07 11-point) -> result record with
mAP and per-class AP (percent) and the BACKBONE checkpoint's sha256.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import CheckpointError, ConfigError
from ..io import atomic_write_json, sha256_file
from ..results import METHODS, checkpoint_info, make_record, write_record
from .backbone import (BACKBONE_FILE, KeyReport, adapt_config_to_arch, backbone_key_report,
                       clear_backbone_init, configured_backbone_path, convert_backbone, log_key_report,
                       set_backbone_init)
from .data import check_voc_data, iter_xml_datasets, set_data_root
from .hooks import META_KEY

if TYPE_CHECKING:
    from mmengine.config import Config
    from mmengine.runner import Runner

    from ..checkpoints import LoadedBackbone

logger = logging.getLogger(__name__)
Launcher = Literal["none", "pytorch", "slurm", "mpi"]
EvalMode = Literal["11points", "area"]
KEY_REPORT_FILE = "backbone_keys.json"


def load_config(config: str | os.PathLike, cfg_options: dict[str, Any] | None = None) -> "Config":
    """Read an mmengine config (its custom_imports register the project's modules) and merge `cfg_options`."""
    from ..runner import load_config as _load_config

    return _load_config(config, cfg_options, where="configs/ (voc_faster_rcnn_*.py, voc_ssd300_*.py)")


def _enable_amp(cfg: "Config") -> None:
    """Switch the optimizer wrapper to AmpOptimWrapper (dynamic loss scale), as mmdet's train tool does."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("--amp needs a CUDA GPU (mmengine's AmpOptimWrapper runs on CUDA/NPU/MLU only); "
                          "drop --amp on this machine")
    if cfg.optim_wrapper.get("type", "OptimWrapper") == "AmpOptimWrapper":
        return
    cfg.optim_wrapper.type = "AmpOptimWrapper"
    cfg.optim_wrapper.loss_scale = "dynamic"


def build_runner(cfg: "Config") -> "Runner":
    """mmengine's Runner from `cfg` (or the registered runner named by `runner_type`), as mmdet's tools do."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    if "runner_type" in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def backbone_provenance(loaded: "LoadedBackbone") -> dict[str, Any]:
    """The record's checkpoint block for a LoadedBackbone: path, sha256, arch, method (+ source_format)."""
    method = str(loaded.meta.get("method") or "").lower() or None
    info = checkpoint_info(loaded.path, loaded.sha256, loaded.arch, method if method in METHODS else None)
    info["source_format"] = loaded.source_format
    return info


@dataclass
class PreparedTraining:
    """A training config ready for `build_runner`, and where its backbone came from."""

    cfg: "Config"
    backbone: dict[str, Any]                  # provenance: path, sha256, arch, method, source_format
    backbone_state: dict = field(repr=False)  # the checkpoint's torchvision-named tensors (fc included)
    converted: Path = Path()                  # work_dir/backbone_mmdet.pth


def prepare_training(config: str | os.PathLike | "Config", backbone: str | os.PathLike | None = None,
                     work_dir: str | os.PathLike | None = None, cfg_options: dict[str, Any] | None = None,
                     resume: str | bool | None = None, amp: bool = False, seed: int = 0, trust: bool = False,
                     launcher: Launcher = "none",
                     data_root: str | os.PathLike | None = None) -> PreparedTraining:
    """Everything train_det does before building the Runner; checks data and checkpoint first.

    `backbone` overrides the config's `backbone_checkpoint`; the config's depth and channels follow the
    checkpoint's arch (resnet18/34/50/101/152). `resume`: True/'auto' resumes from work_dir's last
    checkpoint, a path resumes from that file.
    """
    cfg = config if not isinstance(config, (str, os.PathLike)) else load_config(config, cfg_options)
    if not isinstance(config, (str, os.PathLike)) and cfg_options:
        cfg.merge_from_dict(cfg_options)
    from ..runner import apply_run_options, ensure_checkpoint_hooks

    name = config if isinstance(config, (str, os.PathLike)) else (cfg.filename or "detector")
    apply_run_options(cfg, name, work_dir, resume=resume, launcher=launcher)
    cfg.randomness = dict(seed=int(seed), deterministic=False)  # detection: always this seed, never deterministic
    ensure_checkpoint_hooks(cfg, meta_hook=None)  # BackboneProvenanceHook writes this project's meta
    if data_root is not None:
        set_data_root(cfg, data_root)
    src = str(backbone) if backbone is not None else configured_backbone_path(cfg)
    if not src:
        raise ConfigError("no backbone checkpoint: the config sets no `backbone_checkpoint`; "
                          "pass --backbone CKPT")
    check_voc_data(cfg, splits=("train", "val"))

    converted = Path(cfg.work_dir) / BACKBONE_FILE
    loaded = convert_backbone(src, converted, trust=trust)
    adapt_config_to_arch(cfg, loaded.arch)
    set_backbone_init(cfg, converted)
    cfg.backbone_checkpoint = src
    provenance = backbone_provenance(loaded)
    hooks = [h for h in (cfg.get("custom_hooks") or []) if h.get("type") != "BackboneProvenanceHook"]
    hooks.append(dict(type="BackboneProvenanceHook", backbone=provenance))
    cfg.custom_hooks = hooks

    if amp:
        _enable_amp(cfg)
    return PreparedTraining(cfg=cfg, backbone=provenance, backbone_state=loaded.state_dict,
                            converted=converted)


def report_backbone_keys(runner: "Runner", prepared: PreparedTraining) -> KeyReport:
    """Log and write (work_dir/backbone_keys.json) which checkpoint keys the built detector takes."""
    report = backbone_key_report(runner.model, prepared.backbone_state)
    log_key_report(report, prepared.backbone["path"])
    atomic_write_json(Path(prepared.cfg.work_dir) / KEY_REPORT_FILE,
                      {"backbone": prepared.backbone, **report.as_dict()})
    if not report.loaded:
        raise CheckpointError(
            f"backbone checkpoint {prepared.backbone['path']}: none of its tensors fit the detector's "
            f"backbone ({len(report.shape_mismatch)} shape mismatches); check that the config is a ResNet "
            f"detector")
    return report


def train_detector(config: str | os.PathLike, backbone: str | os.PathLike | None = None,
                   work_dir: str | os.PathLike | None = None, cfg_options: dict[str, Any] | None = None,
                   resume: str | bool | None = None, amp: bool = False, seed: int = 0, trust: bool = False,
                   launcher: Launcher = "none", data_root: str | os.PathLike | None = None) -> Path:
    """Fine-tune the config's detector from a backbone checkpoint (tools/train_det.py); returns work_dir."""
    prepared = prepare_training(config, backbone, work_dir, cfg_options, resume, amp, seed, trust, launcher,
                                data_root)
    runner = build_runner(prepared.cfg)
    report_backbone_keys(runner, prepared)
    runner.train()
    return Path(prepared.cfg.work_dir)


def detector_name(cfg: "Config") -> str:
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
    from ..checkpoints import safe_torch_load

    obj = safe_torch_load(checkpoint, trust=trust)
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise CheckpointError(f"{checkpoint} is not a detector checkpoint saved by mmengine (no "
                              f"'state_dict'); pass the epoch_N.pth / iter_N.pth that tools/train_det.py "
                              f"wrote")
    return obj.get("meta") or {}, obj["state_dict"]


def _recorded_backbone(meta: dict, cfg: "Config", backbone: str | os.PathLike | None,
                         checkpoint: str | os.PathLike, trust: bool) -> dict[str, Any]:
    """The backbone a detector started from: its checkpoint meta, else --backbone, else the config's path."""
    if backbone is None and META_KEY in meta:
        return dict(meta[META_KEY])
    src = str(backbone) if backbone is not None else configured_backbone_path(cfg)
    if not src or not Path(src).is_file():
        raise CheckpointError(
            f"{checkpoint} does not record which backbone it started from (it was not trained with "
            f"tools/train_det.py) and the config's backbone checkpoint {src!r} is not a file: pass "
            f"--backbone CKPT (the classification checkpoint the detector was fine-tuned from)")
    from ..checkpoints import load_backbone_state

    loaded = load_backbone_state(src, trust=trust)
    logger.warning("%s has no backbone record; attributing it to %s (sha256 %s)", checkpoint, src,
                   loaded.sha256[:12])
    return backbone_provenance(loaded)


def _check_state_fits(model, state: dict, checkpoint: str | os.PathLike) -> None:
    """mmengine loads detector weights with strict=False: refuse a checkpoint that does not fit the model."""
    from mmengine.model import is_model_wrapper

    if is_model_wrapper(model):
        model = model.module
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or wrong:
        raise CheckpointError(
            f"{checkpoint} does not fit the config's detector: {len(missing)} weights missing "
            f"(e.g. {missing[:3]}), {len(wrong)} of another shape (e.g. {wrong[:3]}). Test with the "
            f"config the detector was trained with (train_det dumps it into its work dir)")


@dataclass
class EvalOutcome:
    """What test_det produced: the record, where it went, and mmengine's raw metrics."""

    record: dict[str, Any]
    path: Path
    metrics: dict[str, float]


def evaluate_detector(config: str | os.PathLike, checkpoint: str | os.PathLike,
                      out: str | os.PathLike | None = None, cfg_options: dict[str, Any] | None = None,
                      eval_mode: EvalMode | None = None, seed: int = 0,
                      backbone: str | os.PathLike | None = None, trust: bool = False,
                      launcher: Launcher = "none", data_root: str | os.PathLike | None = None) -> EvalOutcome:
    """Evaluate a trained detector on the config's test set (VOC07 test) and write `<out>/results.json`.

    mAP and per-class AP are percentages (VOCMetric's fractions x 100); eval_mode None keeps the config's
    ('11points' = VOC07, as the paper). The record's checkpoint block is the BACKBONE checkpoint.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"detector checkpoint {checkpoint} not found: pass a .pth that train_det wrote")
    cfg = load_config(config, cfg_options)
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
            raise ConfigError(f"--eval-mode {eval_mode!r}: choose '11points' (VOC07) or 'area' "
                              f"(VOC2012 style)")
        evaluator.eval_mode = eval_mode
    out = Path(out) if out is not None else checkpoint.parent / f"test_{checkpoint.stem}"
    cfg.work_dir = str(out)
    cfg.load_from = str(checkpoint)
    cfg.resume = False
    cfg.randomness = dict(seed=int(seed), deterministic=False)
    from ..distributed import prepare_launcher

    prepare_launcher(cfg, launcher)

    runner = build_runner(cfg)
    _check_state_fits(runner.model, state, checkpoint)
    metrics = runner.test()
    record = make_detection_record(metrics, cfg, provenance, checkpoint)
    path = write_record(out, record)
    logger.info("VOC mAP %.2f (%s) -> %s", record["metrics"]["mAP"], record["eval_mode"], path)
    return EvalOutcome(record=record, path=path, metrics=dict(metrics))


def make_detection_record(metrics: dict[str, float], cfg: "Config", backbone: dict[str, Any],
                          checkpoint: str | os.PathLike) -> dict[str, Any]:
    """A 'detection' result record from VOCMetric(PerClass) output (fractions) -> percentages."""
    mean = next((v for k, v in metrics.items() if k.split("/")[-1] == "mAP"), None)
    if mean is None:
        raise ConfigError(f"the test evaluator returned no mAP (got {sorted(metrics)}): use "
                          f"test_evaluator=dict(type='VOCMetricPerClass', metric='mAP')")
    per_class = {k.split("/")[-1][3:]: 100.0 * float(v) for k, v in metrics.items()
                 if k.split("/")[-1].startswith("AP_")}
    test_sets = list(iter_xml_datasets(cfg.test_dataloader.get("dataset")))
    data_root = test_sets[0].get("data_root") if test_sets else None
    ann_file = test_sets[0].get("ann_file") if test_sets else None
    evaluator = cfg.test_evaluator
    block = {k: backbone.get(k) for k in ("path", "sha256", "arch", "method")}
    return make_record(
        "detection", block, dataset="voc2007", split="test", metrics={"mAP": 100.0 * float(mean)},
        detector=detector_name(cfg), per_class_ap=per_class, eval_mode=evaluator.get("eval_mode", "11points"),
        iou_thr=evaluator.get("iou_thrs", 0.5), data_root=data_root, ann_file=ann_file,
        backbone_source_format=backbone.get("source_format"),
        detector_checkpoint={"path": str(checkpoint), "sha256": sha256_file(checkpoint)},
        config=str(cfg.filename or ""))
