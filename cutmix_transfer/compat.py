"""Fixes for the two known breaks of the pinned stack (torch 2.14, mmengine 0.10.7, mmdet 3.3.0).

1. torch >= 2.6 loads with `weights_only=True`; mmengine 0.10.7 calls plain `torch.load`, so checkpoints the
   Runner itself saved (they hold `HistoryBuffer`, numpy arrays and scalars) fail to load for resume and test.
   `patch_mmengine_checkpoint_loading` re-registers mmengine's local-file loader so that it goes through
   `cutmix_transfer.checkpoints.safe_torch_load`: weights_only with an explicit allow-list of the types
   mmengine writes. An unknown file that needs arbitrary unpickling is still refused; nothing ever loads with
   `weights_only=False` unless the user passed --trust-checkpoint to a tool.
2. mmdet 3.3.0 `SSDHead` never builds `self.loss_cls` (it computes its loss inline), but
   `BaseDenseHead._predict_by_feat_single` reads `self.loss_cls`, so SSD predict raises AttributeError.
   `register_mmdet_fixes` registers `SSDHeadFixed` (use `type='SSDHeadFixed'` in a config's bbox_head).

Both are applied once and are idempotent. (1) runs on `import cutmix_transfer`; (2) runs when
`cutmix_transfer.detection` is imported (configs list it in `custom_imports`), so that importing the package
does not pay for importing mmdet.
"""
from __future__ import annotations

import logging
import os.path as osp

from .checkpoints import safe_torch_load

logger = logging.getLogger(__name__)
_state = {"mmengine": False, "mmdet": False}


def _load_from_local_safe(filename: str, map_location=None):
    """mmengine's local checkpoint loader, through the project's safe loader (same signature as mmengine's)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f"{filename} can not be found.")
    return safe_torch_load(filename, map_location=map_location if map_location is not None else "cpu")


def patch_mmengine_checkpoint_loading() -> bool:
    """Route mmengine's local checkpoint loading (resume, load_from, Pretrained init) through safe_torch_load."""
    if _state["mmengine"]:
        return True
    try:
        from mmengine.runner.checkpoint import CheckpointLoader
    except ImportError:  # mmengine not installed: nothing to patch
        return False
    # mmengine logs `class_name[10:]` of the loader: keep the 'load_from_' prefix so the log reads 'local_safe'.
    _load_from_local_safe.__name__ = "load_from_local_safe"
    CheckpointLoader.register_scheme(prefixes="", loader=_load_from_local_safe, force=True)
    _state["mmengine"] = True
    return True


def register_mmdet_fixes() -> None:
    """Register SSDHeadFixed in mmdet's MODELS registry (idempotent)."""
    if _state["mmdet"]:
        return
    from mmdet.models.dense_heads import SSDHead
    from mmdet.registry import MODELS

    class SSDHeadFixed(SSDHead):
        """mmdet's SSDHead with the `loss_cls` attribute that BaseDenseHead's predict path reads.

        SSDHead computes its classification loss inline (hard-negative mining) and has no loss module;
        predict only asks `getattr(self.loss_cls, 'custom_cls_channels', False)`, for which None is right.
        """

        loss_cls = None

    MODELS.register_module(name="SSDHeadFixed", module=SSDHeadFixed, force=True)
    _state["mmdet"] = True


patch_mmengine_checkpoint_loading()
