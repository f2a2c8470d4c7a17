"""A classification backbone checkpoint -> the weights an mmdet detector starts from.

The checkpoint goes through the project's one loader (`cutmix_transfer.checkpoints`), is written in mmdet's
form (`{'state_dict': torchvision-named backbone weights without fc, 'meta'}`), and the detector config is
adapted to the checkpoint's depth: mmdet's `ResNet` uses torchvision's parameter names (`conv1`, `bn1`,
`layer1.0.conv1`, `layer1.0.downsample.0`, ...), so no key renaming is needed, but a ResNet-18/34 (BasicBlock,
expansion 1) feeds necks and heads with 4x fewer channels than a ResNet-50/101/152 (Bottleneck, expansion 4).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checkpoints import LoadedBackbone, export_checkpoint, load_backbone_state
from ..errors import CheckpointError, ConfigError
from ..results import METHODS, checkpoint_info

if TYPE_CHECKING:
    import torch
    from mmengine.config import Config

logger = logging.getLogger(__name__)

# arch -> (mmdet ResNet depth, block expansion)
RESNET_ARCHS: dict[str, tuple[int, int]] = {
    "resnet18": (18, 1),
    "resnet34": (34, 1),
    "resnet50": (50, 4),
    "resnet101": (101, 4),
    "resnet152": (152, 4),
}
STAGE_PLANES = (64, 128, 256, 512)
BACKBONE_FILE = "backbone_mmdet.pth"


def resnet_depth(arch: str) -> int:
    """mmdet `ResNet.depth` for a torchvision arch name; ConfigError for anything that is not a ResNet."""
    if arch not in RESNET_ARCHS:
        raise ConfigError(
            f"backbone arch {arch!r} cannot start an mmdet detector: the detection configs use mmdet's "
            f"ResNet, which takes {sorted(RESNET_ARCHS)}. Pass a ResNet checkpoint with --backbone."
        )
    return RESNET_ARCHS[arch][0]


def stage_channels(arch: str) -> tuple[int, int, int, int]:
    """Output channels of layer1..layer4 for `arch`: (64, 128, 256, 512) x block expansion."""
    resnet_depth(arch)
    expansion = RESNET_ARCHS[arch][1]
    return tuple(p * expansion for p in STAGE_PLANES)  # type: ignore[return-value]


def adapt_config_to_arch(cfg: Config, arch: str) -> dict[str, Any]:
    """Set the backbone depth of `cfg.model` and every channel count that follows from it, in place.

    Handles the three layouts the project's configs use: an FPN neck (Faster R-CNN R-FPN), an SSDNeck (SSD300
    with ResNet taps at `out_indices`; the extra layers keep their widths) and the C4 layout (backbone of 3
    stages + `roi_head.shared_head` ResLayer as stage 4). Returns {dotted key: new value} of what it set.
    """
    model = cfg.model
    backbone = model.get("backbone", {})
    if backbone.get("type") != "ResNet":
        raise ConfigError(
            f"config model.backbone.type is {backbone.get('type')!r}; converted checkpoints go into mmdet's "
            f"'ResNet' only. Use a configs/voc_*.py config or set model.backbone.type='ResNet'."
        )
    depth = resnet_depth(arch)
    chans = stage_channels(arch)
    out_indices = tuple(backbone.get("out_indices", (0, 1, 2, 3)))
    taps = [chans[i] for i in out_indices]
    changed: dict[str, Any] = {"model.backbone.depth": depth}
    backbone.depth = depth

    neck = model.get("neck")
    neck_type = neck.get("type") if neck else None
    if neck_type == "FPN":
        neck.in_channels = taps
        changed["model.neck.in_channels"] = taps
    elif neck_type == "SSDNeck":
        n_in = len(neck.in_channels)
        if n_in != len(taps):
            raise ConfigError(
                f"model.neck.in_channels has {n_in} entries but model.backbone.out_indices "
                f"{out_indices} taps {len(taps)} stages; make them the same length."
            )
        out_channels = tuple(taps) + tuple(neck.out_channels[n_in:])
        neck.in_channels = tuple(taps)
        neck.out_channels = out_channels
        model.bbox_head.in_channels = out_channels
        changed.update(
            {
                "model.neck.in_channels": tuple(taps),
                "model.neck.out_channels": out_channels,
                "model.bbox_head.in_channels": out_channels,
            }
        )
    elif neck_type is None and model.get("roi_head", {}).get("shared_head") is not None:
        # C4: RPN and RoI pooling on the last backbone stage, stage 4 (layer4) as the RoI head's shared head.
        c4 = chans[out_indices[-1]]
        c5 = chans[3]
        shared = model.roi_head.shared_head
        shared.depth = depth
        model.rpn_head.in_channels = c4
        model.rpn_head.feat_channels = c4
        model.roi_head.bbox_roi_extractor.out_channels = c4
        model.roi_head.bbox_head.in_channels = c5
        changed.update(
            {
                "model.roi_head.shared_head.depth": depth,
                "model.rpn_head.in_channels": c4,
                "model.rpn_head.feat_channels": c4,
                "model.roi_head.bbox_roi_extractor.out_channels": c4,
                "model.roi_head.bbox_head.in_channels": c5,
            }
        )
    else:
        raise ConfigError(
            f"do not know how to adapt model.neck of type {neck_type!r} to {arch}: set its in_channels to "
            f"{taps} by hand in the config (backbone out_indices {out_indices})."
        )
    logger.info("adapted the detector config to %s: %s", arch, changed)
    return changed


def set_backbone_init(cfg: Config, checkpoint: str | os.PathLike) -> list[str]:
    """Point every module that takes the ResNet weights (backbone, C4 shared head) at `checkpoint`, in place.

    Returns the dotted config keys it set. mmengine's `Pretrained` init loads with strict=False, so the
    backbone takes conv1..layerN and the C4 shared head takes layer4 from the same file.
    """
    init = dict(type="Pretrained", checkpoint=str(checkpoint))
    cfg.model.backbone.init_cfg = dict(init)
    keys = ["model.backbone.init_cfg"]
    shared = cfg.model.get("roi_head", {}).get("shared_head") if cfg.model.get("roi_head") else None
    if shared is not None:
        shared.init_cfg = dict(init)
        keys.append("model.roi_head.shared_head.init_cfg")
    return keys


def clear_backbone_init(cfg: Config) -> None:
    """Drop the Pretrained init of backbone / shared head (testing: the detector checkpoint holds all)."""
    cfg.model.backbone.init_cfg = None
    if cfg.model.get("roi_head") and cfg.model.roi_head.get("shared_head") is not None:
        cfg.model.roi_head.shared_head.init_cfg = None


def configured_backbone_path(cfg: Config) -> str | None:
    """The backbone checkpoint a config names: top-level `backbone_checkpoint`, else backbone.init_cfg's."""
    path = cfg.get("backbone_checkpoint")
    if path:
        return str(path)
    init = cfg.model.get("backbone", {}).get("init_cfg") or {}
    if isinstance(init, Mapping) and init.get("type") == "Pretrained":
        return str(init.get("checkpoint"))
    return None


def backbone_provenance(loaded: LoadedBackbone) -> dict[str, Any]:
    """The record's checkpoint block for a LoadedBackbone: path, sha256, arch, method (+ source_format)."""
    method = str(loaded.meta.get("method") or "").lower() or None
    info = checkpoint_info(loaded.path, loaded.sha256, loaded.arch, method if method in METHODS else None)
    info["source_format"] = loaded.source_format
    return info


def convert_backbone(
    src: str | os.PathLike, dst: str | os.PathLike, arch: str | None = None, trust: bool = False
) -> LoadedBackbone:
    """Load `src` (any supported format, safely) and write it to `dst` in mmdet's form (no fc, atomic)."""
    src = Path(src)
    if not src.is_file():
        raise CheckpointError(
            f"backbone checkpoint {src} not found. Pass --backbone PATH, or put the file there (the CutMix "
            f"paper's ResNet-50 release: github.com/clovaai/CutMix-PyTorch, 'Pretrained models')."
        )
    loaded = load_backbone_state(src, arch=arch, trust=trust)
    resnet_depth(loaded.arch)
    export_checkpoint(loaded, dst, to="mmdet")
    logger.info(
        "converted %s (%s, %s, sha256 %s) -> %s", src, loaded.arch, loaded.source_format, loaded.sha256[:12], dst
    )
    return loaded


@dataclass
class KeyReport:
    """Which checkpoint tensors a detector takes: `loaded` as '<module>.<key>', the rest by checkpoint key."""

    loaded: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # in the checkpoint, in no target module (fc.*)
    shape_mismatch: list[str] = field(default_factory=list)  # same name, other shape: NOT loaded
    missing: list[str] = field(default_factory=list)  # target module keys the checkpoint lacks

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "loaded": self.loaded,
            "left_out": self.left_out,
            "shape_mismatch": self.shape_mismatch,
            "missing": self.missing,
        }


def pretrained_targets(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The detector submodules that the backbone checkpoint initialises: backbone and, in C4, shared head."""
    from mmengine.model import is_model_wrapper

    if is_model_wrapper(model):
        model = model.module
    targets = {"backbone": model.backbone}
    roi_head = getattr(model, "roi_head", None)
    shared = getattr(roi_head, "shared_head", None) if roi_head is not None else None
    if shared is not None:
        targets["roi_head.shared_head"] = shared
    return targets


def backbone_key_report(model: torch.nn.Module, checkpoint_state: Mapping[str, torch.Tensor]) -> KeyReport:
    """Compare a checkpoint's keys and shapes with the modules it initialises (what strict=False loads)."""
    targets = {name: mod.state_dict() for name, mod in pretrained_targets(model).items()}
    report = KeyReport()
    used: set[str] = set()
    for key, tensor in checkpoint_state.items():
        hit = False
        for name, sd in targets.items():
            if key not in sd:
                continue
            if tuple(sd[key].shape) == tuple(tensor.shape):
                report.loaded.append(f"{name}.{key}")
                used.add(f"{name}.{key}")
                hit = True
            else:
                report.shape_mismatch.append(
                    f"{key}: checkpoint {tuple(tensor.shape)} vs {name} {tuple(sd[key].shape)}"
                )
                hit = True
        if not hit:
            report.left_out.append(key)
    for name, sd in targets.items():
        report.missing.extend(f"{name}.{k}" for k in sd if f"{name}.{k}" not in used)
    return report


def log_key_report(report: KeyReport, source: str) -> None:
    """Log exactly which checkpoint keys the detector takes and which it leaves out."""
    logger.info(
        "backbone checkpoint %s: %d tensors loaded into the detector: %s",
        source,
        len(report.loaded),
        ", ".join(report.loaded),
    )
    logger.info(
        "left out (in the checkpoint, not in the detector): %d: %s",
        len(report.left_out),
        ", ".join(report.left_out) or "none",
    )
    if report.shape_mismatch:
        logger.warning("NOT loaded, shape differs: %s", "; ".join(report.shape_mismatch))
    if report.missing:
        logger.warning(
            "detector weights the checkpoint does not provide (stay at their init): %s", ", ".join(report.missing)
        )
