"""The corruption evaluator: one classifier checkpoint, a corruption benchmark in its released layout (ImageNet-C,
CIFAR-10-C, CIFAR-100-C; or what tools/make_corruptions.py writes) and optionally its clean set -> top-1 error per
corruption x severity, CE / mCE, relative mCE, the unnormalised mean error and CIFAR-C's mean error
(docs/corruption_protocol.md).

Every selected clean image is evaluated in every corruption x severity set (and in the clean set), one item per
(set, image) in set-major order. Under torchrun (WORLD_SIZE > 1) rank r takes the batches r, r + world, ... of the
single-process batch sequence, so every item is classified in the batch it has in one process and the numbers equal
the single-process run; rank 0 writes:
- results.json (kind 'corruption'): the metrics, the error table, CE per corruption, what was missing or skipped,
  the protocol block (preprocessing, normalisation, metric sources);
- per_image.csv: one row per clean image (the report resamples by clean image: a draw carries all of an image's
  corruption x severity versions): label, clean prediction, then `<corruption>_s<severity>` = 1 when that version
  was classified correctly (empty when it was not evaluated), and the image's share of the unnormalised mean error;
- predictions.npz: image_ids, labels, sets, pred (sets x images, -1 = not evaluated), confidence (max softmax).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..clseval.calibration import ECE_BINS, expected_calibration_error
from ..datasets.common import check_unreadable
from ..datasets.corruptions import SEVERITIES, check_selection
from ..distributed import all_gather_objects, gather_rows, run_on_ranks
from ..errors import ConfigError, DatasetError
from ..evalmodel import load_eval_classifier
from ..normalization import Normalization
from ..results import EvalResult, checkpoint_info, data_identity, make_record
from ..runtime import EvalOptions, check_input_size, resolve_device, seed_everything
from .data import (
    C_PREPROCESS,
    CLEAN,
    CROP_FRACTION,
    DATASETS,
    DEFAULT_IMAGE_SIZE,
    EvalItems,
    RankBatches,
    c_transform,
    clean_transform,
    load_data,
    select_images,
)
from .metrics import ALEXNET_CLEAN_ERR, error_table, summarize_errors
from .outputs import write_outputs
from .write import read_manifest

logger = logging.getLogger(__name__)
UNREADABLE_FIX = "replace the file, or pass --skip-unreadable to leave that image version out (listed in results.json)"
CLASSIFIER_HINT = "pass a classifier of the benchmark's classes (--dataset), or the matching --corruption-root"


@dataclass
class CorruptionEvalConfig(EvalOptions):
    """Everything one evaluation depends on; the tool fills it from its arguments.

    corruption_root: the benchmark's folder; data_root: the clean set (None: no clean error, no relative mCE);
    corruptions empty: all 19; image_size None: 224 for ImageNet, 32 for CIFAR; max_images None: every image; the
    run options (mean / std among them: None, the checkpoint meta's, else the dataset's) are EvalOptions'.
    """

    backbone: str | os.PathLike
    dataset: str = "imagenet"
    corruption_root: str | os.PathLike | None = None
    corruptions: Sequence[str] = ()
    severities: Sequence[int] = SEVERITIES
    max_images: int | None = None
    image_size: int | None = None
    c_preprocess: str = "center-crop"
    batch_size: int = 64
    workers: int = 4


def default_out_dir(backbone: str | os.PathLike, dataset: str) -> Path:
    """work_dirs/corruption/<checkpoint file stem>_<dataset>."""
    return Path("work_dirs") / "corruption" / f"{Path(backbone).stem}_{dataset}"


def validate_config(cfg: CorruptionEvalConfig) -> None:
    """ConfigError for any option that cannot work, before anything is read."""
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"--dataset {cfg.dataset!r}: choose one of {', '.join(DATASETS)}")
    if cfg.c_preprocess not in C_PREPROCESS:
        raise ConfigError(f"--c-preprocess {cfg.c_preprocess!r}: choose one of {', '.join(C_PREPROCESS)}")
    if cfg.max_images is not None and int(cfg.max_images) < 1:
        raise ConfigError(f"--max-images {cfg.max_images}: give a positive number of images (or leave it out: all)")
    if int(cfg.batch_size) < 1 or int(cfg.workers) < 0:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} / --workers {cfg.workers}: need a batch size >= 1 and workers >= 0"
        )
    check_input_size(cfg.image_size or DEFAULT_IMAGE_SIZE[cfg.dataset])
    check_selection(cfg.corruptions, cfg.severities)
    cfg.check_normalization(cfg.dataset)


def evaluate_corruptions(cfg: CorruptionEvalConfig) -> EvalResult:
    """Evaluate one checkpoint on a corruption benchmark and write results.json, per_image.csv and predictions.npz
    (module docstring). Under torchrun each rank runs its batches and rank 0 writes; every rank returns the record."""
    t_start = time.perf_counter()
    validate_config(cfg)
    seed_everything(int(cfg.seed))
    return run_on_ranks(
        lambda device, rank, world: _evaluate(cfg, device, rank, world, t_start), resolve_device(cfg.device)
    )


def _classify(
    model: torch.nn.Module, items: EvalItems, cfg: CorruptionEvalConfig, device: torch.device, rank: int, world: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]], dict[str, float]]:
    """This rank's (items, predictions, confidences, skipped items, timing)."""
    sampler = RankBatches(len(items), cfg.batch_size, rank, world)
    loader = torch.utils.data.DataLoader(
        items, batch_sampler=sampler, num_workers=int(cfg.workers), pin_memory=device.type == "cuda"
    )
    done, preds, confs, skipped = [], [], [], []
    timing = {"data_wait_s": 0.0, "forward_s": 0.0}
    t_wait = time.perf_counter()
    for batch in tqdm(loader, total=len(sampler), desc=f"corruptions {cfg.dataset}", unit="batch",
                      disable=not cfg.progress or rank != 0):  # fmt: skip
        timing["data_wait_s"] += time.perf_counter() - t_wait
        ids = [int(i) for i in batch["item"]]

        def describe(j: int, ids=ids) -> dict[str, Any]:
            k, pos = items.locate(ids[j])
            s = items.sets[k]
            key = items.data.keys[int(items.selected[pos])]
            return {"index": ids[j], "set": CLEAN if s == CLEAN else s.name, "image_id": key}

        ok = check_unreadable(batch["error"], describe, cfg.skip_unreadable, skipped, UNREADABLE_FIX, logger)
        t0 = time.perf_counter()
        if ok.any():
            x = batch["pixels"] if ok.all() else batch["pixels"][torch.from_numpy(np.flatnonzero(ok))]
            with torch.inference_mode():
                logits = model(x.to(device, non_blocking=True))
            conf, pred = torch.softmax(logits.double(), dim=1).max(dim=1)
            done.append(np.asarray(ids, dtype=np.int64)[ok])
            preds.append(pred.cpu().numpy().astype(np.int64))
            confs.append(conf.cpu().numpy())
        timing["forward_s"] += time.perf_counter() - t0
        t_wait = time.perf_counter()
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dtype=dt)  # noqa: E731
    return cat(done, np.int64), cat(preds, np.int64), cat(confs, np.float64), skipped, timing


def _gather(parts: tuple[np.ndarray, np.ndarray, np.ndarray], world: int):
    """Every rank's (items, preds, confs), merged in item order."""
    if world > 1:
        allp = all_gather_objects(parts)
        parts = tuple(np.concatenate([p[i] for p in allp]) for i in range(3))
    order = np.argsort(parts[0], kind="stable")
    return tuple(p[order] for p in parts)


def _evaluate(cfg: CorruptionEvalConfig, device: torch.device, rank: int, world: int, t_start: float) -> EvalResult:
    size = int(cfg.image_size or DEFAULT_IMAGE_SIZE[cfg.dataset])
    data, clean = load_data(
        cfg.dataset, cfg.corruption_root, cfg.data_root, cfg.corruptions, cfg.severities, cfg.skip_unreadable
    )
    found = load_eval_classifier(
        cfg.backbone,
        cfg.dataset,
        f"the {cfg.dataset} corruption benchmark at {data.root}",
        CLASSIFIER_HINT,
        num_classes=len(data.classes),
        arch=cfg.arch,
        trust=cfg.trust_checkpoint,
        mean=cfg.mean,
        std=cfg.std,
    )
    loaded, form, norm = found.loaded, found.form, found.norm
    mean, std = norm.mean, norm.std
    model = found.model.to(device).eval()
    model.requires_grad_(False)
    selected = select_images(len(data.keys), cfg.max_images, int(cfg.seed))
    tf = c_transform(cfg.c_preprocess, size, mean, std)
    items = EvalItems(data, clean, selected, tf, clean_transform(cfg.dataset, cfg.c_preprocess, size, mean, std), size)
    out_dir = Path(cfg.out) if cfg.out is not None else default_out_dir(cfg.backbone, cfg.dataset)
    logger.info(
        "corruptions %s: %s (%s), %d of %d images x %d sets%s, input %d px (%s), device %s, rank %d of %d",
        cfg.dataset,
        loaded.path,
        loaded.arch,
        len(selected),
        len(data.keys),
        len(data.sets),
        " + clean" if clean is not None else "",
        size,
        cfg.c_preprocess,
        device,
        rank,
        world,
    )
    done, preds, confs, skipped, timing = _classify(model, items, cfg, device, rank, world)
    done, preds, confs = _gather((done, preds, confs), world)
    skipped = gather_rows(skipped, world)
    if not done.size:
        raise DatasetError(f"no image of {data.root} could be read ({len(skipped)} unreadable); nothing to evaluate")

    n, n_sets = len(selected), len(items.sets)
    pred = np.full((n_sets, n), -1, dtype=np.int64)
    conf = np.full((n_sets, n), np.nan, dtype=np.float64)
    k, j = np.divmod(done, n)
    pred[k, j], conf[k, j] = preds, confs
    labels = data.labels[selected]
    evaluated = pred >= 0
    wrong = (pred != labels[None, :]) & evaluated
    first = 1 if clean is not None else 0
    clean_err = None
    if clean is not None and evaluated[0].any():
        clean_err = 100.0 * float(wrong[0].sum()) / float(evaluated[0].sum())
    pairs = [(s.corruption, s.severity) for s in data.sets]
    table, pooled, counts = error_table(pairs, wrong[first:], evaluated[first:])
    summary = summarize_errors(table, clean_err, pooled, alexnet=cfg.dataset == "imagenet")
    metrics = headline_metrics(summary, clean_err, cfg.dataset)
    timing["total_s"] = time.perf_counter() - t_start

    manifest = read_manifest(data.root)
    sets_evaluated = [s.name for s in data.sets]
    # every set holds every selected image: the identity is the image keys and the set names (not their product,
    # 95 x 50,000 ids for ImageNet-C)
    ids = [f"image/{data.keys[p]}" for p in selected] + [f"set/{name}" for name in ([CLEAN] if clean else [])]
    ids += [f"set/{name}" for name in sets_evaluated]
    identity = data_identity(f"{cfg.dataset}-c", "val" if cfg.dataset == "imagenet" else "test", data.root, ids)
    identity.update(num_images=int(n), num_sets=len(ids) - int(n))
    record = make_record(
        "corruption",
        checkpoint_info(loaded.path, loaded.sha256, loaded.arch, loaded.meta.get("method")),
        f"{cfg.dataset}-c",
        "val" if cfg.dataset == "imagenet" else "test",
        metrics,
        data=identity,
        arch=loaded.arch,
        checkpoint_format=loaded.source_format,
        model_form=form,
        normalization_source=norm.source,
        corruption_root=str(data.root),
        data_root=str(cfg.data_root) if cfg.data_root is not None else None,
        layout=data.layout,
        num_images=int(n),
        num_images_in_release=len(data.keys),
        num_sets=len(data.sets),
        sets=sets_evaluated,
        images_per_set=counts,
        corruptions=summary["corruptions"],
        missing_corruptions=data.missing,
        skipped_sets={"count": len(data.skipped), "sets": data.skipped},
        skipped_unreadable={"count": len(skipped), "images": skipped},
        clean_err=clean_err,
        errors={c: {str(s): e for s, e in sorted(v.items())} for c, v in table.items()},
        summary=summary,
        ece=calibration(items.sets, conf, wrong, evaluated),
        generated=manifest,
        protocol=protocol_fields(cfg, size, norm, data.layout, manifest),
        config=cfg.record_config(),
        world_size=world,
        timing=timing,
    )
    files: dict[str, Path] = {}
    rows: list[dict[str, Any]] = []
    if rank == 0:
        files, rows = write_outputs(out_dir, record, data, items, selected, pred, conf, wrong, evaluated, first)
        logger.info(
            "corruptions %s: %s -> %s", cfg.dataset, ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()), out_dir
        )
    if world > 1:
        dist.barrier()
    return EvalResult(record=record, rows=rows, out_dir=out_dir, files=files)


def headline_metrics(summary: dict[str, Any], clean_err: float | None, dataset: str) -> dict[str, float]:
    """The record's `metrics`: mce / relative_mce / augmix_mean_err when they cover the 15 corruptions, else the same
    with a `_partial` suffix (never the same key for a partial value), mean_err (every corruption evaluated), and
    clean_err when the clean set was evaluated. ImageNet gets the mCEs, CIFAR the AugMix mean error."""
    out: dict[str, float] = {}
    keys = ("mce", "relative_mce") if dataset == "imagenet" else ("augmix_mean_err",)
    for key in keys:
        v = summary.get(key)
        if v is not None:
            out[key + ("_partial" if v["partial"] else "")] = v["value"]
    if summary["mean_err"] is not None:
        out["mean_err"] = summary["mean_err"]
    if clean_err is not None:
        out["clean_err"] = clean_err
    return out


def protocol_fields(
    cfg: CorruptionEvalConfig, size: int, norm: Normalization, layout: str, manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The protocol block's named fields: every choice that changes a number (`manifest`: how a generated copy was
    made; None for the release). Pipelines as (resize of the short side or None, centre crop); the metric fields
    name their reference (docs/corruption_protocol.md)."""
    source: dict[str, Any] = {"kind": "release"}
    if manifest is not None:
        source = {"kind": "generated", **{k: manifest.get(k) for k in ("param_set", "image_size", "seed", "prep")}}
    resize = int(round(size / CROP_FRACTION))
    clean_resize = resize if cfg.dataset == "imagenet" or cfg.c_preprocess == "resize-crop" else None
    return {
        "c_preprocess": cfg.c_preprocess,
        "c_resize": resize if cfg.c_preprocess == "resize-crop" else None,
        "c_crop": size,
        "clean_resize": clean_resize,
        "clean_crop": size,
        "image_size": size,
        **norm.protocol(),
        "c_source": source,
        "decode": "pil_rgb",
        "layout": layout,
        "severities": sorted(int(s) for s in cfg.severities),
        "alexnet_errors": "augmix_imagenet_ALEXNET_ERR",
        "alexnet_clean_err": ALEXNET_CLEAN_ERR,
        "mce": "augmix_compute_mce",
        "relative_mce": "robustness_metrics_imagenet_variants",
        "ece": {"bins": ECE_BINS, "norm": "l1", "code": "clseval.calibration"},
    }


def calibration(sets: Sequence[Any], conf: np.ndarray, wrong: np.ndarray, evaluated: np.ndarray) -> dict[str, Any]:
    """ECE (percent, clseval.calibration.expected_calibration_error) of every evaluated set ('clean' and
    '<corruption>/<severity>'), and per severity over the images of every corruption at that severity."""
    per_set: dict[str, float] = {}
    by_severity: dict[int, list[int]] = {}
    for k, s in enumerate(sets):
        if not evaluated[k].any():
            continue
        ev = evaluated[k]
        per_set[CLEAN if s == CLEAN else s.name] = expected_calibration_error(conf[k][ev], ~wrong[k][ev])
        if s != CLEAN:
            by_severity.setdefault(int(s.severity), []).append(k)
    per_severity = {}
    for sev, ks in sorted(by_severity.items()):
        ev = evaluated[ks]
        per_severity[str(sev)] = expected_calibration_error(conf[ks][ev], ~wrong[ks][ev])
    return {"per_set": per_set, "per_severity": per_severity}
