"""Fine-tune an mmdet detector from a backbone checkpoint on mmengine's Runner (what tools/train_det.py calls).

config -> VOC files checked -> backbone checkpoint loaded (core loader, safe) -> config adapted to its depth ->
`work_dir/backbone_mmdet.pth` (atomic) as the backbone's `Pretrained` init -> key report logged and written ->
`Runner.train()`; every saved checkpoint carries the backbone's provenance (BackboneProvenanceHook).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ..distributed import Launcher
from ..errors import CheckpointError, ConfigError
from ..io import atomic_write_json
from ..runner import apply_run_options, build_runner, ensure_checkpoint_hooks, load_config, train_and_validate
from .backbone import (
    BACKBONE_FILE,
    KeyReport,
    adapt_config_to_arch,
    backbone_key_report,
    backbone_provenance,
    configured_backbone_path,
    convert_backbone,
    log_key_report,
    set_backbone_init,
)
from .data import check_voc_data, set_data_root

logger = logging.getLogger(__name__)
KEY_REPORT_FILE = "backbone_keys.json"
# where a missing or broken detection config sends the user (runner.load_config's hint)
CONFIGS_HINT = "configs/ (voc_faster_rcnn_*.py, voc_ssd300_*.py)"


def _enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to AmpOptimWrapper (dynamic loss scale), as mmdet's train tool does."""
    if not torch.cuda.is_available():
        raise ConfigError(
            "--amp needs a CUDA GPU (mmengine's AmpOptimWrapper runs on CUDA/NPU/MLU only); drop --amp on this machine"
        )
    if cfg.optim_wrapper.get("type", "OptimWrapper") == "AmpOptimWrapper":
        return
    cfg.optim_wrapper.type = "AmpOptimWrapper"
    cfg.optim_wrapper.loss_scale = "dynamic"


@dataclass
class PreparedTraining:
    """A training config ready for `build_runner`, and where its backbone came from."""

    cfg: Config
    backbone: dict[str, Any]  # provenance: path, sha256, arch, method, source_format
    backbone_state: dict = field(repr=False)  # the checkpoint's torchvision-named tensors (fc included)
    converted: Path = Path()  # work_dir/backbone_mmdet.pth


def prepare_training(
    config: str | os.PathLike | Config,
    backbone: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    cfg_options: dict[str, Any] | None = None,
    resume: str | bool | None = None,
    amp: bool = False,
    seed: int = 0,
    trust: bool = False,
    launcher: Launcher = "none",
    data_root: str | os.PathLike | None = None,
) -> PreparedTraining:
    """Everything train_det does before building the Runner; checks data and checkpoint first.

    `backbone` overrides the config's `backbone_checkpoint`; the config's depth and channels follow the
    checkpoint's arch (resnet18/34/50/101/152). `resume`: True/'auto' resumes from work_dir's last
    checkpoint, a path resumes from that file.
    """
    if isinstance(config, (str, os.PathLike)):
        cfg, name = load_config(config, cfg_options, where=CONFIGS_HINT), config
    else:
        cfg, name = config, config.filename or "detector"
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    apply_run_options(cfg, name, work_dir, resume=resume, launcher=launcher)
    cfg.randomness = dict(seed=int(seed), deterministic=False)  # detection: always this seed, never deterministic
    ensure_checkpoint_hooks(cfg, meta_hook=None)  # BackboneProvenanceHook writes this project's meta
    if data_root is not None:
        set_data_root(cfg, data_root)
    src = str(backbone) if backbone is not None else configured_backbone_path(cfg)
    if not src:
        raise ConfigError("no backbone checkpoint: the config sets no `backbone_checkpoint`; pass --backbone CKPT")
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
    return PreparedTraining(cfg=cfg, backbone=provenance, backbone_state=loaded.state_dict, converted=converted)


def report_backbone_keys(runner: Runner, prepared: PreparedTraining) -> KeyReport:
    """Log and write (work_dir/backbone_keys.json) which checkpoint keys the built detector takes."""
    report = backbone_key_report(runner.model, prepared.backbone_state)
    log_key_report(report, prepared.backbone["path"])
    atomic_write_json(
        Path(prepared.cfg.work_dir) / KEY_REPORT_FILE, {"backbone": prepared.backbone, **report.as_dict()}
    )
    if not report.loaded:
        raise CheckpointError(
            f"backbone checkpoint {prepared.backbone['path']}: none of its tensors fit the detector's "
            f"backbone ({len(report.shape_mismatch)} shape mismatches); check that the config is a ResNet "
            f"detector"
        )
    return report


def train_detector(config: str | os.PathLike | Config, **options: Any) -> Path:
    """Fine-tune the config's detector from a backbone checkpoint (tools/train_det.py); returns work_dir.

    `options`: prepare_training's keyword arguments (backbone, work_dir, cfg_options, resume, amp, seed, trust,
    launcher, data_root)."""
    prepared = prepare_training(config, **options)
    runner = build_runner(prepared.cfg)
    report_backbone_keys(runner, prepared)
    train_and_validate(runner)  # also the final validation a run killed during it still owes
    return Path(prepared.cfg.work_dir)
