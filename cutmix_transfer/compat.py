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
3. The library parsers a VOC dataset's files reach raise bare exceptions with a traceback: mmdet's XMLDataset
   (`xml.etree.ElementTree.ParseError` for a file that is not valid XML, AttributeError / ValueError for a
   missing or non-numeric <size>/<bndbox> field, FileNotFoundError for an annotation the image list names but
   that does not exist) and mmcv's LoadImageFromFile (an AssertionError for an image cv2 cannot decode, OSError
   for a missing one). `register_mmdet_fixes` wraps both so that they raise the project's one-line DatasetError
   naming the file (and, for invalid XML, the line and column).

Both are applied once and are idempotent. (1) runs as soon as `mmengine.runner.checkpoint` is imported after
`import cutmix_transfer` (at once when it already was): an import hook, so that the evaluators, which never load
through mmengine, do not pay 1 s for importing its runner; (2) runs when
`cutmix_transfer.detection` is imported (configs list it in `custom_imports`), so that importing the package
does not pay for importing mmdet.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os.path as osp
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from .checkpoints import safe_torch_load
from .errors import DatasetError

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


def _voc_parse_errors(parse: Callable[[Any, dict], Any]) -> Callable[[Any, dict], Any]:
    """XMLDataset.parse_data_info raising DatasetError (file, line for invalid XML) instead of a bare exception."""

    @functools.wraps(parse)
    def parse_data_info(self, img_info: dict) -> Any:
        path = img_info.get("xml_path")
        try:
            return parse(self, img_info)
        except ET.ParseError as e:
            line, col = e.position
            raise DatasetError(
                f"VOC annotation {path}, line {line}, column {col}: not valid XML ({e}); repair or "
                f"replace the file (or drop its id from the image list)"
            ) from e
        except FileNotFoundError as e:
            raise DatasetError(
                f"VOC annotation {path} not found, but its id is in the image list "
                f"{getattr(self, 'ann_file', '?')}; add the file or drop the id"
            ) from e
        except (AttributeError, ValueError, TypeError) as e:  # find() gave None / int() of a non-number
            raise DatasetError(
                f"VOC annotation {path}: a <size> or <object> field (name, bndbox xmin/ymin/xmax/"
                f"ymax, width/height) is missing or not a number ({type(e).__name__}: {e}); "
                f"repair the file"
            ) from e

    return parse_data_info


def _image_load_errors(transform: Callable[[Any, dict], Any]) -> Callable[[Any, dict], Any]:
    """mmcv's LoadImageFromFile.transform raising DatasetError for an image it cannot read or decode."""

    @functools.wraps(transform)
    def load(self, results: dict) -> Any:
        try:
            return transform(self, results)
        except (OSError, AssertionError) as e:
            raise DatasetError(
                f"image {results.get('img_path')} cannot be read ({type(e).__name__}: {e}); "
                f"replace the file or drop its id from the image list"
            ) from e

    return load


def register_mmdet_fixes() -> None:
    """Register SSDHeadFixed in mmdet's MODELS registry; make VOC and image reading errors one-line DatasetErrors
    (idempotent)."""
    if _state["mmdet"]:
        return
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets.xml_style import XMLDataset
    from mmdet.models.dense_heads import SSDHead
    from mmdet.registry import MODELS

    XMLDataset.parse_data_info = _voc_parse_errors(XMLDataset.parse_data_info)
    LoadImageFromFile.transform = _image_load_errors(LoadImageFromFile.transform)

    class SSDHeadFixed(SSDHead):
        """mmdet's SSDHead with the `loss_cls` attribute that BaseDenseHead's predict path reads.

        SSDHead computes its classification loss inline (hard-negative mining) and has no loss module;
        predict only asks `getattr(self.loss_cls, 'custom_cls_channels', False)`, for which None is right.
        """

        loss_cls = None

    MODELS.register_module(name="SSDHeadFixed", module=SSDHeadFixed, force=True)
    _state["mmdet"] = True


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Applies patch_mmengine_checkpoint_loading right after mmengine.runner.checkpoint is first imported, by
    whomever, so that `import cutmix_transfer` does not import mmengine's runner (1 s, with torch's FSDP) for the
    evaluators, which never use it."""

    module = "mmengine.runner.checkpoint"

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        sys.meta_path.remove(self)  # once: the other finders locate the real module (its parent is being imported)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            patch_mmengine_checkpoint_loading()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def patch_mmengine_on_import() -> None:
    """Patch mmengine's checkpoint loading now if its module is loaded, else as soon as it is (see _PatchOnImport)."""
    if _PatchOnImport.module in sys.modules:
        patch_mmengine_checkpoint_loading()
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


patch_mmengine_on_import()
