"""One result record per evaluation, so that `tools/report.py` can line up a checkpoint's numbers.

Every evaluating tool writes `<out>/results.json` through `write_record`. The record carries the
checkpoint's sha256: the report groups rows by it.

Record schema (JSON object):
    kind:        'classification' | 'wsol' | 'detection' | 'captioning' | 'ood' | 'robustness'
    checkpoint:  {path, sha256, arch, method}   method: 'baseline'|'mixup'|'cutout'|'cutmix'|None
    dataset, split: str
    metrics:     {name: float}   the headline numbers (percentages where the paper uses percentages)
    data:        {dataset, split, root, num_images, images_sha256}  which data exactly (`data_identity`); the
                 report's cell identity. Records written before this field existed lack it (the report says so).
    created:     ISO time (UTC);  versions: {package: version}
    machine:     {pinned, env, cpu_model}  the CPU pin's state (pinning.pin_state) and the CPU that ran it
    record_version: int  RECORD_VERSION; records without it are version 1 (written before the protocol block)
    protocol:    {field: value}  the protocol identity (`protocol_block`): every choice of the evaluation that can
                 change a number (named fields, JSON values, not free text), always with `cpu_pin`. The report's
                 cell identity is (checkpoint, column, data identity, protocol identity); a version-1 record, or
                 one without the block, reads as protocol 'unrecorded' (`protocol_identity`).
    ...          any tool-specific extra fields (curves, per-class AP, ...)

Headline metric names (percent), which the report reads:
    classification: top1_err, top5_err
    wsol:           top1_cls, top1_loc, gt_known_loc, maxboxacc, maxboxacc_v2, pxap
    detection:      mAP            (and a top-level field `detector`: 'faster_rcnn' | 'ssd300' | ...)
    captioning:     BLEU-1, BLEU-2, BLEU-3, BLEU-4, METEOR, ROUGE-L, CIDEr
    ood:            tnr_at_tpr95, auroc, detection_acc, aupr_in, aupr_out (mean over the OOD sets), top1_err
    robustness:     clean_top1, fgsm_top1_eps<e> (e in 1/255, e.g. fgsm_top1_eps8); curves under `curves`
    corruption:     mce, relative_mce (ImageNet-C; <key>_partial over fewer than the 15 corruptions),
                    augmix_mean_err (CIFAR-C; or _partial), mean_err, clean_err
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .io import atomic_write_json
from .pinning import pin_identity, pin_state

Kind = Literal["classification", "wsol", "detection", "captioning", "ood", "robustness", "corruption"]
KINDS = ("classification", "wsol", "detection", "captioning", "ood", "robustness", "corruption")
METHODS = ("baseline", "mixup", "cutout", "cutmix")
RECORD_NAME = "results.json"
# The training run's seed, in the records of trained models (train_cls, test_det, test_caption): runs that differ only
# in it are replicates of one report cell. A fine-tuned checkpoint carries it where mmengine's Runner.save_checkpoint
# puts it, meta['seed'].
TRAIN_SEED = "train_seed"
TRAIN_SEED_META = "seed"
# 2: the structured `protocol` block (protocol_block) and, for robustness, lambda = the share of the FIRST image
# (version 1 records hold free-text protocol notes and lambda = the share of the second image)
RECORD_VERSION = 2
UNRECORDED = "unrecorded"
PER_IMAGE_CSV = "per_image.csv"  # wsol, robustness, classification: one row per evaluated image (bootstrap means)
PER_IMAGE_DETECTIONS = "per_image_detections.npz"  # detection: per-image ground truth + detections (bootstrap mAP)
PER_IMAGE_IOUS = "per_image_ious.npz"  # wsol: per-image IoU at every CAM threshold (bootstrap MaxBoxAcc)
_VERSION_PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "opencv-python-headless",
    "mmengine",
    "mmcv",
    "mmdet",
    "pycocotools",
    "pycocoevalcap",
    "scikit-learn",
    "cutmix_transfer",
)


def package_versions(names: Iterable[str] = _VERSION_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that can change a number."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def guess_method(*texts: str | None) -> str | None:
    """The pretraining method named in checkpoint metadata or a file name ('cutmix', 'mixup', ...), else None."""
    for text in texts:
        if not text:
            continue
        low = text.lower()
        for m in ("cutmix", "mixup", "cutout", "baseline"):
            if re.search(rf"(?<![a-z]){m}(?![a-z])", low) or m in Path(low).stem.split("_"):
                return m
        if re.search(r"(?<![a-z])(plain|vanilla|base)(?![a-z])", low):
            return "baseline"
    return None


def checkpoint_info(
    path: str | os.PathLike, sha256: str, arch: str | None, method: str | None = None
) -> dict[str, Any]:
    """The `checkpoint` block of a record; `method` falls back to what the file name says."""
    if method is not None and method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return {"path": str(path), "sha256": sha256, "arch": arch, "method": method or guess_method(str(path))}


_PROTOCOL_VALUE = (str, int, float, bool, type(None))


def _check_protocol_value(name: str, value: Any) -> Any:
    """A protocol field's value as JSON (tuples and numpy arrays become lists, numpy scalars and paths their Python
    values); ValueError for anything else that is not a JSON scalar, list or dict of them, so that two records
    compare field by field."""
    if isinstance(value, _PROTOCOL_VALUE):
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item") and not hasattr(value, "__len__"):
        return _check_protocol_value(name, value.item())  # a numpy scalar: its Python value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_check_protocol_value(name, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _check_protocol_value(f"{name}.{k}", v) for k, v in value.items()}
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return _check_protocol_value(name, value.tolist())  # a numpy array: its nested lists
    raise ValueError(f"protocol field {name!r}: {type(value).__name__} is not a JSON value")


def protocol_block(**fields: Any) -> dict[str, Any]:
    """The record's `protocol` block: the given named fields (JSON values) in sorted order, plus `cpu_pin`, the
    instruction-set pin the process runs under (pinning.pin_identity: 'avx2-threads<N>' or 'unpinned') unless
    given. Later issues add fields (normalisation statistics, corruption preprocessing) by passing them here."""
    out = {k: _check_protocol_value(k, v) for k, v in fields.items()}
    out.setdefault("cpu_pin", pin_identity())
    return dict(sorted(out.items()))


def protocol_identity(record: dict[str, Any]) -> str:
    """A record's protocol identity for the report: the canonical JSON of its `protocol` block, or 'unrecorded'
    for a record written before RECORD_VERSION 2 (its block, if any, held free text of other meanings)."""
    block = record.get("protocol")
    if int(record.get("record_version", 1) or 1) < 2 or not isinstance(block, dict):
        return UNRECORDED
    return json.dumps(block, sort_keys=True, separators=(",", ":"))


def make_record(
    kind: Kind, checkpoint: dict[str, Any], dataset: str, split: str, metrics: dict[str, float], **extra: Any
) -> dict[str, Any]:
    """A result record (the module docstring's schema). `protocol` (a dict of named fields) goes through
    `protocol_block`; a tool that gives none gets {cpu_pin} alone."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    protocol = protocol_block(**(extra.pop("protocol", None) or {}))
    return {
        "record_version": RECORD_VERSION,
        "kind": kind,
        "checkpoint": checkpoint,
        "dataset": dataset,
        "split": split,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "machine": pin_state(),
        "protocol": protocol,
        **extra,
    }


def images_digest(image_ids: Iterable[Any]) -> str:
    """sha256 of the sorted, newline-joined image ids: the same image set gives the same digest in any order."""
    ids = sorted(str(i) for i in image_ids)
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def data_identity(dataset: str, split: str, root: str | os.PathLike | None, image_ids: Iterable[Any]) -> dict[str, Any]:
    """The record's `data` block: which dataset, split, folder and image set; two records of one checkpoint are
    the same report cell only when these agree."""
    ids = [str(i) for i in image_ids]
    return {
        "dataset": str(dataset),
        "split": str(split),
        "root": str(Path(root).resolve()) if root not in (None, "") else None,
        "num_images": len(ids),
        "images_sha256": images_digest(ids),
    }


def write_record(out_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write `<out_dir>/results.json` atomically and return its path."""
    path = Path(out_dir) / RECORD_NAME
    atomic_write_json(path, record)
    return path


@dataclass
class WrittenRecord:
    """What an evaluation tool returns at least: its result record and the results.json it was written to."""

    record: dict[str, Any]
    path: Path


@dataclass
class EvalResult:
    """What a per-image evaluation tool produced: its results.json record, the per-image rows (dataset order) and
    the files it wrote."""

    record: dict[str, Any]
    rows: list[dict[str, Any]]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return self.record["metrics"]
