"""The OOD evaluator: one classifier checkpoint, its in-distribution test set, several OOD sets, one detector ->
TNR at 95% TPR, AUROC, detection accuracy, AUPR-in / -out per set and their mean (docs/ood_protocol.md).

Writes ``<out>/results.json`` (kind 'ood', the checkpoint's sha256, every metric per set and the mean, the
in-distribution top-1 error), ``scores.npz`` (key ``in_distribution`` in test-set order, then one key per OOD set
named as in results.json, in the set's sorted file order; higher = more in-distribution), ``per_image/*.csv``
(one file per set, same order as scores.npz) and ``ood.png`` (score histograms in vs out, ROC curves).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..datasets.common import check_unreadable
from ..distributed import gather_rows, rank_batches, run_on_ranks
from ..errors import CheckpointError, ConfigError, DatasetError
from ..evalmodel import load_eval_classifier
from ..io import atomic_savez, atomic_write_text
from ..results import checkpoint_info, data_identity, make_record, write_record
from ..runtime import EvalOptions, resolve_device, seed_everything
from .data import (
    DEFAULT_NOISE_COUNT,
    IN_DATASETS,
    IN_DISTRIBUTION_KEY,
    InDistribution,
    OODImages,
    OODSet,
    load_in_distribution,
    normalized,
    resolve_ood_sets,
)
from .detectors import Detector, build_detector
from .figure import write_ood_figure
from .metrics import METRICS, METRICS_AS, mean_metrics, metrics_as

logger = logging.getLogger(__name__)

IN_COLUMNS = ("index", "label", "class_name", "predicted", "predicted_name", "correct", "score")
OOD_COLUMNS = ("index", "image_id", "predicted", "predicted_name", "score")
FIGURE_NAME = "ood.png"
# what the error of an unreadable OOD image tells the user to do
UNREADABLE_FIX = "replace or delete the file, or pass --skip-unreadable to leave it out (listed in results.json)"


@dataclass
class OODEvalConfig(EvalOptions):
    """Everything one OOD evaluation depends on; the tool fills it from its arguments.

    ood: folders of images and/or 'uniform' / 'gaussian'; data_root None -> data/cifar; out None ->
    work_dirs/ood/<checkpoint stem>_<detector>; temperature / epsilon None -> the detector's defaults;
    metrics_as: 'exact' | 'odin' | 'lee' (the code whose metric definitions are used); score_dtype: 'float64' |
    'float32' (the softmax's); skip_first: leave out the first N images of every set, the in-distribution and
    noise sets included (ODIN: 1000); the run options (device, seed, ...) are EvalOptions'.
    """

    backbone: str | os.PathLike
    ood: Sequence[str] = ()
    in_dataset: str = "cifar100"
    detector: str = "msp"
    temperature: float | None = None
    epsilon: float | None = None
    batch_size: int = 128
    workers: int = 0
    noise_count: int = DEFAULT_NOISE_COUNT
    metrics_as: str = "exact"
    score_dtype: str = "float64"
    skip_first: int = 0


@dataclass
class OODResult:
    """What an evaluation produced: the record, the scores (in_distribution first, then each set), file paths."""

    record: dict[str, Any]
    scores: dict[str, np.ndarray]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return self.record["metrics"]


def default_out_dir(backbone: str | os.PathLike, detector: str) -> Path:
    """work_dirs/ood/<checkpoint file stem>_<detector>."""
    return Path("work_dirs") / "ood" / f"{Path(backbone).stem}_{detector}"


def _validate(cfg: OODEvalConfig) -> None:
    if cfg.in_dataset not in IN_DATASETS:
        raise ConfigError(f"--in-dataset {cfg.in_dataset!r}: choose one of {', '.join(IN_DATASETS)}")
    if int(cfg.batch_size) < 1 or int(cfg.workers) < 0:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} / --workers {cfg.workers}: need a batch size >= 1 and workers >= 0"
        )
    if int(cfg.noise_count) < 1:
        raise ConfigError(f"--noise-count {cfg.noise_count}: need at least one noise image per noise set")
    if cfg.metrics_as not in METRICS_AS:
        raise ConfigError(f"--metrics-as {cfg.metrics_as!r}: choose one of {', '.join(METRICS_AS)}")
    if cfg.metrics_as != "exact" and cfg.detector == "energy":
        raise ConfigError(
            f"--metrics-as {cfg.metrics_as} needs scores in [0, 1] (its code thresholds softmax probabilities); "
            "the energy detector's are not: use --metrics-as exact, or --detector msp / odin"
        )
    cfg.check_normalization(cfg.in_dataset)
    if int(cfg.skip_first) < 0:
        raise ConfigError(f"--skip-first {cfg.skip_first}: give a number of images >= 0 (ODIN's is 1000)")


def _skip(n: int, skip: int, what: str) -> range:
    """The positions scored of a set of n images when the first `skip` are left out; ConfigError if none is left."""
    if skip >= n:
        raise ConfigError(f"--skip-first {skip} leaves no image of {what} ({n} images): give a smaller number")
    return range(skip, n)


def _batches(
    dataset: torch.utils.data.Dataset, positions: range, cfg: OODEvalConfig, device: torch.device, rank: int, world: int
):
    """(batch positions, batch) over this rank's batches of `positions`: the single-process batch sequence (batches
    of cfg.batch_size in order), every world-th from `rank`, so each image is scored in the batch it has in one
    process and the scores equal the single-process run's."""
    batches = rank_batches(list(positions), int(cfg.batch_size), rank, world)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=batches, num_workers=int(cfg.workers), pin_memory=device.type == "cuda"
    )
    return zip(batches, loader)


def _arrays(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores float64, predicted classes int64, positions int64) of rows in position order."""
    return (
        np.array([r["score"] for r in rows], dtype=np.float64),
        np.array([r["pred"] for r in rows], dtype=np.int64),
        np.array([r["index"] for r in rows], dtype=np.int64),
    )


def score_in_distribution(
    model: torch.nn.Module,
    detector: Detector,
    data: InDistribution,
    cfg: OODEvalConfig,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N,) float64, predicted classes (N,) int64) of the in-distribution test set, in its order, without
    its first cfg.skip_first images; under torchrun each rank scores its batches and every rank gets all."""
    rows: list[dict[str, Any]] = []
    kept = _skip(len(data.labels), int(cfg.skip_first), f"the {data.name} test set")
    progress = tqdm(desc=f"{data.name} test", unit="batch", disable=not cfg.progress or rank != 0)
    for positions, batch in _batches(data.dataset, kept, cfg, device, rank, world):
        s, logits = detector(model, batch["inputs"].to(device, non_blocking=True))
        preds = logits.argmax(dim=1)
        rows += [{"index": i, "score": float(v), "pred": int(p)} for i, v, p in zip(positions, s, preds)]
        progress.update()
    progress.close()
    scores, preds, _ = _arrays(gather_rows(rows, world))
    return scores, preds


def score_ood_set(
    model: torch.nn.Module,
    detector: Detector,
    ood: OODSet,
    cfg: OODEvalConfig,
    device: torch.device,
    mean: Sequence[float],
    std: Sequence[float],
    rank: int = 0,
    world: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """(scores, predicted classes, indices of the scored images, skipped images) of one OOD set, in file order,
    without its first cfg.skip_first images (indices stay positions in the whole set); under torchrun each rank
    scores its batches and every rank gets all. An unreadable image raises DatasetError naming it, unless
    cfg.skip_unreadable."""
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    positions = _skip(len(ood), int(cfg.skip_first), f"the OOD set {ood.name}")
    progress = tqdm(desc=f"OOD {ood.name}", unit="batch", disable=not cfg.progress or rank != 0)
    for _, batch in _batches(OODImages(ood, mean, std), positions, cfg, device, rank, world):
        indices = [int(i) for i in batch["index"]]
        ok = check_unreadable(
            batch["error"],
            lambda j, idx=indices: {"set": ood.name, "index": idx[j], "image_id": ood.image_ids[idx[j]]},
            cfg.skip_unreadable,
            skipped,
            UNREADABLE_FIX,
            logger,
        )
        progress.update()
        if not ok.any():
            continue
        sel = np.flatnonzero(ok)
        s, logits = detector(model, batch["image"][torch.from_numpy(sel)].to(device, non_blocking=True))
        preds = logits.argmax(dim=1)
        rows += [{"index": indices[j], "score": float(v), "pred": int(p)} for j, v, p in zip(sel, s, preds)]
    progress.close()
    rows, skipped = gather_rows(rows, world), gather_rows(skipped, world)
    if not rows:
        raise DatasetError(
            f"no image of the OOD set {ood.name} ({ood.source}) could be read ({len(skipped)} "
            f"unreadable); nothing to score"
        )
    scores, preds, kept = _arrays(rows)
    return scores, preds, kept, skipped


def _check_finite(name: str, scores: np.ndarray, ids: Sequence[str], path: Path) -> None:
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise CheckpointError(
            f"{path}: the model gives non-finite scores on {bad.size} images of {name} (first: "
            f"{ids[int(bad[0])]}); the checkpoint's weights are broken (NaN or inf)"
        )


def _check_unit_range(cfg: OODEvalConfig, name: str, scores: np.ndarray) -> None:
    """--metrics-as odin / lee threshold scores in [0, 1]; a detector that gives others is refused, naming it."""
    if cfg.metrics_as != "exact" and not ((scores >= 0.0) & (scores <= 1.0)).all():
        raise ConfigError(
            f"--metrics-as {cfg.metrics_as} needs scores in [0, 1]; --detector {cfg.detector} gives "
            f"{float(scores.min()):.4g} .. {float(scores.max()):.4g} on {name}: use --metrics-as exact"
        )


def _csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (repr(r[k]) if isinstance(r[k], float) else r[k]) for k in columns})
    return buf.getvalue()


def evaluate_ood(cfg: OODEvalConfig) -> OODResult:
    """Score the in-distribution test set and every OOD set with one detector; write results.json, scores.npz,
    per_image/*.csv and the figure. See the module docstring. Under torchrun (WORLD_SIZE > 1) rank r scores the
    batches r, r + world, ... of every set's single-process batch sequence, so the scores, and every number, equal
    one process's; rank 0 writes the files, every rank returns the record."""
    t_start = time.perf_counter()
    _validate(cfg)
    seed_everything(int(cfg.seed))
    return run_on_ranks(
        lambda device, rank, world: _evaluate(cfg, device, rank, world, t_start), resolve_device(cfg.device)
    )


def _evaluate(cfg: OODEvalConfig, device: torch.device, rank: int, world: int, t_start: float) -> OODResult:
    data = load_in_distribution(cfg.in_dataset, cfg.data_root)
    sets = resolve_ood_sets(cfg.ood, seed=int(cfg.seed), noise_count=int(cfg.noise_count))
    found = load_eval_classifier(
        cfg.backbone,
        cfg.in_dataset,
        f"{data.name} ({data.folder}/{IN_DATASETS[data.name][2][-1]})",  # meta / batches.meta
        f"pass a checkpoint trained on {data.name}",
        num_classes=len(data.classes),
        arch=cfg.arch,
        trust=cfg.trust_checkpoint,
        mean=cfg.mean,
        std=cfg.std,
    )
    loaded, norm = found.loaded, found.norm
    data = normalized(data, norm.mean, norm.std)  # the in-distribution and every OOD image alike
    mean, std = data.mean, data.std
    detector = build_detector(
        cfg.detector, temperature=cfg.temperature, epsilon=cfg.epsilon, input_std=std, score_dtype=cfg.score_dtype
    )
    model = found.model.to(device)
    out_dir = Path(cfg.out) if cfg.out is not None else default_out_dir(cfg.backbone, cfg.detector)
    logger.info(
        "OOD %s: %s (%s) on %d %s test images and %d OOD sets (%s), mean %s std %s (%s), device %s",
        cfg.detector,
        loaded.path,
        loaded.arch,
        len(data.labels),
        data.name,
        len(sets),
        ", ".join(f"{s.name}: {len(s)}" for s in sets),
        norm.mean,
        norm.std,
        norm.source,
        device,
    )

    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    in_scores, in_preds = score_in_distribution(model, detector, data, cfg, device, rank, world)
    timing["in_distribution_s"] = time.perf_counter() - t0
    skip = int(cfg.skip_first)
    labels = np.asarray(data.labels, dtype=np.int64)[skip:]
    _check_finite(IN_DISTRIBUTION_KEY, in_scores, [str(i + skip) for i in range(len(labels))], loaded.path)
    _check_unit_range(cfg, IN_DISTRIBUTION_KEY, in_scores)
    scores = {IN_DISTRIBUTION_KEY: in_scores}
    per_set: dict[str, dict[str, Any]] = {}
    ood_rows: dict[str, list[dict[str, Any]]] = {}
    skipped: list[dict[str, Any]] = []
    names = data.classes
    for ood in sets:
        t0 = time.perf_counter()
        s, preds, kept, skipped_here = score_ood_set(model, detector, ood, cfg, device, mean, std, rank, world)
        timing[f"{ood.name}_s"] = time.perf_counter() - t0
        ids = [ood.image_ids[i] for i in kept]
        _check_finite(ood.name, s, ids, loaded.path)
        _check_unit_range(cfg, ood.name, s)
        scores[ood.name] = s
        skipped.extend(skipped_here)
        per_set[ood.name] = {
            **metrics_as(cfg.metrics_as, in_scores, s, cfg.in_dataset),
            "num_images": int(s.size),
            "num_skipped": len(skipped_here),
            "source": ood.source,
            "kind": ood.kind,
        }
        ood_rows[ood.name] = [
            {"index": int(i), "image_id": iid, "predicted": int(p), "predicted_name": names[p], "score": float(v)}
            for i, iid, p, v in zip(kept, ids, preds, s)
        ]
        logger.info(
            "OOD %s vs %s: %s", data.name, ood.name, ", ".join(f"{k} {per_set[ood.name][k]:.2f}" for k in METRICS)
        )

    mean_m = mean_metrics(per_set)
    top1_err = 100.0 * float(np.mean(in_preds != labels))
    timing["total_s"] = time.perf_counter() - t_start
    record = make_record(
        "ood",
        checkpoint_info(loaded.path, loaded.sha256, loaded.arch, loaded.meta.get("method")),
        data.name,
        "test",
        {**mean_m, "top1_err": top1_err},
        data=data_identity(
            data.name,
            "test",
            data.folder,
            [f"in/{i}" for i in range(skip, skip + int(in_scores.size))]
            + [f"{s.name}/{s.source}/{i}" for s in sets for i in s.image_ids[skip:]],
        ),
        detector=cfg.detector,
        detector_params=detector.all_params(),
        arch=loaded.arch,
        model_form={
            "wsol": bool(getattr(model, "wsol", False)),
            "large_feature_map": bool(getattr(model, "large_feature_map", False)),
        },
        checkpoint_format=loaded.source_format,
        normalization_source=norm.source,
        data_root=str(data.folder),
        num_in_images=int(in_scores.size),
        ood_sets=[s.name for s in sets],
        per_set=per_set,
        mean=mean_m,
        skipped_unreadable={"count": len(skipped), "images": skipped},
        protocol={
            "positive": "in_distribution",
            "image_size": 32,
            **norm.protocol(),
            "ood_resize": "pil_bilinear_32_no_crop",
            "detector": cfg.detector,
            "detector_params": {k: v for k, v in detector.all_params().items() if k != "score_dtype"},
            "metrics_as": cfg.metrics_as,
            "score_dtype": cfg.score_dtype,
            "skip_first": skip,
            "mean_over_sets": "unweighted",
        },
        config=cfg.record_config(),
        world_size=world,
        timing=timing,
    )
    if rank != 0:
        dist.barrier()  # rank 0 writes
        return OODResult(record=record, scores=scores, out_dir=out_dir, files={})

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {"results": write_record(out_dir, record), "scores": out_dir / "scores.npz"}
    atomic_savez(files["scores"], **scores)
    in_rows = [
        {
            "index": i,
            "label": int(y),
            "class_name": names[y],
            "predicted": int(p),
            "predicted_name": names[p],
            "correct": int(p == y),
            "score": float(v),
        }
        for i, (y, p, v) in enumerate(zip(labels, in_preds, in_scores), start=skip)
    ]
    files["per_image_in"] = out_dir / "per_image" / f"{IN_DISTRIBUTION_KEY}.csv"
    atomic_write_text(files["per_image_in"], _csv(in_rows, IN_COLUMNS))
    for name, rows in ood_rows.items():
        files[f"per_image_{name}"] = out_dir / "per_image" / f"{name}.csv"
        atomic_write_text(files[f"per_image_{name}"], _csv(rows, OOD_COLUMNS))
    files["figure"] = write_ood_figure(
        out_dir / FIGURE_NAME,
        scores,
        per_set,
        title=f"{Path(loaded.path).name} ({loaded.arch}), {cfg.detector} on {data.name}",
    )
    logger.info(
        "OOD %s mean over %d sets: %s; %s top-1 err %.2f -> %s",
        cfg.detector,
        len(sets),
        ", ".join(f"{k} {mean_m[k]:.2f}" for k in METRICS),
        data.name,
        top1_err,
        out_dir,
    )
    if world > 1:
        dist.barrier()
    return OODResult(record=record, scores=scores, out_dir=out_dir, files=files)
