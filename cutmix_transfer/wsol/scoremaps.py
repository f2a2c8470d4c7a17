"""Saved score maps, made by any method, read for scoring without a model.

Two layouts: this project's ``cams.npz`` (``image_ids`` (N,) str, ``cams`` (N, H, W) float32, and, when the
evaluator wrote it, ``checkpoint_path`` / ``checkpoint_sha256`` / ``arch`` of the model that made the maps), or
wsolevaluation's ``scoremap_root``: one ``<scoremap_root>/<image_id>.npy`` per image, image_id the metadata's id
(CUB ``001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg`` -> ``....jpg.npy``), as its evaluation.py
reads them. A 224x224 map in [0, 1] is scored as it is (the evaluator's own maps); a map of another size is resized
and normalised as the model path does (``cam.normalize_cams``: bicubic to 224, then per-image min-max). A map with
NaN, a missing or extra image id, or a wrong shape is a one-line DatasetError naming the id and the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cam import normalize_cams
from ..errors import DatasetError
from ..io import sha256_file
from .boxes import RESIZE_LENGTH

logger = logging.getLogger(__name__)

NPY_SUFFIX = ".npy"


@dataclass
class SavedMaps:
    """Score maps keyed by image id, with the digest that identifies them (and the checkpoint that made them)."""

    path: Path
    layout: str  # 'cams.npz' or 'scoremap_root'
    sha256: str
    source_checkpoint: dict[str, str] | None = None
    _npz_maps: np.ndarray | None = None
    _npz_row: dict[str, int] = field(default_factory=dict)

    def where(self, image_id: str) -> str:
        """The file (and entry) one image's map is read from, for messages."""
        return f"{self.path}[{image_id}]" if self.layout == "cams.npz" else str(self.path / (image_id + NPY_SUFFIX))

    def raw(self, image_id: str) -> np.ndarray:
        """The map as stored."""
        if self._npz_maps is not None:
            return self._npz_maps[self._npz_row[image_id]]
        try:
            return np.load(self.path / (image_id + NPY_SUFFIX), allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DatasetError(
                f"{self.where(image_id)}: cannot read the score map of {image_id!r} ({e}); write "
                f"it with np.save as a 2-D float array"
            ) from None

    def get(self, image_id: str) -> np.ndarray:
        """The (224, 224) float32 map in [0, 1] that is scored for `image_id`."""
        return prepare_map(self.raw(image_id), image_id, self.where(image_id))

    def maps_for(self, image_ids: Sequence[str]) -> np.ndarray:
        """(B, 224, 224) float32 maps of `image_ids`, in that order."""
        return np.stack([self.get(i) for i in image_ids]) if image_ids else np.zeros((0, 224, 224), np.float32)


def prepare_map(raw: np.ndarray, image_id: str, where: str) -> np.ndarray:
    """Check one stored map and bring it to the scoring frame (see the module docstring)."""
    arr = np.asarray(raw)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or min(arr.shape) < 1 or not np.issubdtype(arr.dtype, np.number):
        raise DatasetError(
            f"{where}: the score map of {image_id!r} has shape {arr.shape} dtype {arr.dtype}; "
            f"save one 2-D (H, W) float map per image"
        )
    arr = arr.astype(np.float32)
    if np.isnan(arr).any():
        raise DatasetError(
            f"{where}: the score map of {image_id!r} contains NaN; replace it (e.g. by zeros) before scoring"
        )
    if arr.shape == (RESIZE_LENGTH, RESIZE_LENGTH):
        if arr.min() < 0 or arr.max() > 1:
            raise DatasetError(
                f"{where}: the 224x224 score map of {image_id!r} lies in [{arr.min():g}, "
                f"{arr.max():g}], not [0, 1]; min-max normalise it per image before saving"
            )
        return arr
    if not np.isfinite(arr).all():
        raise DatasetError(f"{where}: the score map of {image_id!r} contains inf; save finite values")
    return normalize_cams(arr[None], (RESIZE_LENGTH, RESIZE_LENGTH))[0]


def _folder_digest(root: Path, rel_paths: Sequence[str]) -> str:
    """sha256 over the sorted listing of the .npy files and each file's own sha256."""
    h = hashlib.sha256()
    for rel in sorted(rel_paths):
        h.update(rel.encode("utf-8") + b"\0" + bytes.fromhex(sha256_file(root / rel)) + b"\n")
    return h.hexdigest()


def _scalar(npz, key: str) -> str | None:
    return str(npz[key][()]) if key in npz.files else None


def _check_coverage(have: Sequence[str], wanted: Sequence[str], where: Callable[[str], str]) -> None:
    """One map per image of the split, no more: DatasetError naming the first extra id of `have` (where its map
    is), then the first missing id of `wanted`."""
    wanted_set, have_set = set(wanted), set(have)
    extra = [i for i in have if i not in wanted_set]
    if extra:
        raise DatasetError(
            f"{where(extra[0])}: the map of image id {extra[0]!r} ({len(extra)} extra in all) is not in the split "
            f"being scored; remove it or check --dataset, --split and --metadata"
        )
    missing = [i for i in wanted if i not in have_set]
    if missing:
        raise DatasetError(
            f"{where(missing[0])}: no score map for image id {missing[0]!r} ({len(missing)} missing in all); every "
            f"image of the split needs one"
        )


def load_saved_maps(path: str | os.PathLike, image_ids: Sequence[str]) -> SavedMaps:
    """Open saved maps for the split's `image_ids`: every id needs a map and every map an id (else DatasetError)."""
    path = Path(path)
    wanted = list(image_ids)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                if "image_ids" not in npz.files or "cams" not in npz.files:
                    raise DatasetError(
                        f"{path}: not a cams.npz (it needs the arrays image_ids and cams, as "
                        f"tools/wsol_eval.py --save-cams writes them); found {npz.files}"
                    )
                ids = [str(i) for i in npz["image_ids"].tolist()]
                cams = npz["cams"]
                source = None
                if "checkpoint_sha256" in npz.files:
                    source = {
                        "path": _scalar(npz, "checkpoint_path"),
                        "sha256": _scalar(npz, "checkpoint_sha256"),
                        "arch": _scalar(npz, "arch"),
                    }
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # a corrupt or truncated zip: BadZipFile
            raise DatasetError(
                f"{path}: cannot read it as an .npz ({e}); pass a cams.npz written by "
                f"--save-cams or a folder of <image_id>.npy files"
            ) from None
        if cams.ndim != 3 or cams.shape[0] != len(ids):
            raise DatasetError(f"{path}: cams has shape {cams.shape} for {len(ids)} image ids; expected (N, H, W)")
        rows = {}
        for j, i in enumerate(ids):
            if i in rows:
                raise DatasetError(f"{path}: image id {i!r} appears twice in image_ids")
            rows[i] = j
        _check_coverage(ids, wanted, lambda i: str(path))
        return SavedMaps(
            path=path,
            layout="cams.npz",
            sha256=sha256_file(path),
            source_checkpoint=source,
            _npz_maps=cams,
            _npz_row=rows,
        )
    if not path.is_dir():
        raise DatasetError(
            f"score maps not found: {path}; pass --scoremaps a cams.npz or a folder holding "
            f"<image_id>.npy per image (wsolevaluation's scoremap_root)"
        )
    found = sorted(p.relative_to(path).as_posix() for p in path.rglob("*" + NPY_SUFFIX) if p.is_file())
    have = {rel[: -len(NPY_SUFFIX)] for rel in found}
    _check_coverage(sorted(have), wanted, lambda i: str(path / (i + NPY_SUFFIX)))
    return SavedMaps(path=path, layout="scoremap_root", sha256=_folder_digest(path, found))
