"""A hook that stores which backbone checkpoint a detector started from in every checkpoint it saves."""

from __future__ import annotations

from typing import Any

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..checkpoints import BACKBONE_META_KEY


@HOOKS.register_module()
class BackboneProvenanceHook(Hook):
    """Put `meta[BACKBONE_META_KEY] = {path, sha256, arch, method, source_format}` in saved checkpoints.

    `test_det` reads it back so that the detection record carries the BACKBONE's sha256, which the report
    uses to line detection up with the same checkpoint's classification, localization and captioning.
    """

    priority = "VERY_LOW"

    def __init__(self, backbone: dict[str, Any]) -> None:
        missing = {"path", "sha256", "arch"} - set(backbone)
        if missing:
            raise ValueError(f"BackboneProvenanceHook needs backbone keys {sorted(missing)}; got {sorted(backbone)}")
        self.backbone = dict(backbone)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault("meta", {})[BACKBONE_META_KEY] = dict(self.backbone)
