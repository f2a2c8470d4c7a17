"""The classification evaluator: one classifier checkpoint, one test split -> top-1 / top-5 error as CutMix-PyTorch's
test.py, NLL, ECE, RMS calibration error, optionally temperature scaling (docs/classification_protocol.md).

Writes ``<out>/results.json`` (kind 'classification', the checkpoint's sha256, the data identity, the protocol with
the normalisation used), ``per_image.csv`` (image_id, index, label, pred, confidence, correct_top1, correct_top5:
train_cls's columns plus the confidence, so the report reads both alike), ``logits.npz`` (logits, labels, indices,
image_ids; the temperature and its fit positions when fitted) and ``reliability.png``.
Under torchrun (WORLD_SIZE > 1) rank r classifies the batches r, r + world, ... of the single-process batch
sequence, so every image is classified in the batch it has in one process: the logits, and every number, equal the
single-process run. Rank 0 writes the files.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torchvision.transforms import Normalize
from tqdm import tqdm

from ..datasets.common import check_unreadable
from ..distributed import all_gather_objects, rank_batches, run_on_ranks
from ..errors import CheckpointError, ConfigError, DatasetError
from ..evalmodel import load_eval_classifier
from ..io import atomic_savez, atomic_write_text
from ..normalization import Normalization
from ..results import (
    PER_IMAGE_CSV,
    TRAIN_SEED,
    TRAIN_SEED_META,
    EvalResult,
    checkpoint_info,
    data_identity,
    make_record,
    write_record,
)
from ..runtime import EvalOptions, check_input_size, resolve_device, seed_everything
from .calibration import (
    RMS_BIN_SIZE,
    classification_metrics,
    confidence_and_correct,
    fit_temperature,
    split_for_temperature,
    topk_correct,
    topk_predictions,
)
from .data import DATASETS, DEFAULT_IMAGE_SIZE, ClsData, load_cls_data
from .figures import write_reliability_diagram
from .identity import classification_protocol

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("image_id", "index", "label", "pred", "confidence", "correct_top1", "correct_top5")
LOGITS_NAME = "logits.npz"
FIGURE_NAME = "reliability.png"
CLASSIFIER_HINT = (
    "evaluate a classifier of this dataset's classes, or point --data-root at the dataset it was trained on"
)


@dataclass
class ClsEvalConfig(EvalOptions):
    """Everything one evaluation depends on; the tool fills it from its arguments.

    image_size None: the dataset's (224; CIFAR 32); fit_temperature: the share of the images (0 < F < 1)
    temperature scaling is fitted on (seeded by `seed`), None for no fit; the run options (mean / std among them)
    are EvalOptions'.
    """

    backbone: str | os.PathLike
    dataset: str = "imagenet"
    image_size: int | None = None
    fit_temperature: float | None = None
    batch_size: int = 64
    workers: int = 4


def validate_config(cfg: ClsEvalConfig) -> None:
    """ConfigError for any option that cannot work, before anything is loaded."""
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"--dataset {cfg.dataset!r}: choose one of {', '.join(DATASETS)}")
    if cfg.image_size is not None:
        check_input_size(cfg.image_size)
    if int(cfg.batch_size) < 1 or int(cfg.workers) < 0:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} / --workers {cfg.workers}: need a batch size >= 1 and workers >= 0"
        )
    if cfg.fit_temperature is not None and not 0.0 < float(cfg.fit_temperature) < 1.0:
        raise ConfigError(
            f"--fit-temperature {cfg.fit_temperature}: give the share of the images to fit on, strictly between 0 "
            "and 1 (e.g. 0.5); the rest is where the fit is reported"
        )
    cfg.check_normalization(cfg.dataset)


def default_out_dir(backbone: str | os.PathLike, dataset: str) -> Path:
    """work_dirs/test_cls/<checkpoint file stem>_<dataset>."""
    return Path("work_dirs") / "test_cls" / f"{Path(backbone).stem}_{dataset}"


def evaluate_classification(cfg: ClsEvalConfig) -> EvalResult:
    """Classify the test split, write results.json, per_image.csv, logits.npz and reliability.png (rank 0). Under
    torchrun each rank classifies its batches and every rank returns the record."""
    t_start = time.perf_counter()
    validate_config(cfg)
    seed_everything(int(cfg.seed))
    return run_on_ranks(
        lambda device, rank, world: _evaluate(cfg, device, rank, world, t_start), resolve_device(cfg.device)
    )


def classify(
    model: torch.nn.Module,
    batches: Iterable[dict[str, Any]],
    device: torch.device,
    skip_unreadable: bool = False,
    skipped: list[dict[str, Any]] | None = None,
    image_ids: Sequence[str] | None = None,
    timing: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(indices (n,) int64, logits (n, K) float32) of decoded batches ({'index', 'image', 'error'}), in batch order.
    An unreadable image raises DatasetError unless `skip_unreadable` (then it is listed in `skipped`)."""
    skipped = [] if skipped is None else skipped
    indices, logits = [], []
    t_wait = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        if timing is not None:
            timing["data_wait_s"] += t0 - t_wait
        idx = np.asarray(batch["index"], dtype=np.int64)
        ok = check_unreadable(
            batch["error"],
            lambda j, idx=idx: {"index": int(idx[j]), "image_id": image_ids[idx[j]] if image_ids else str(idx[j])},
            skip_unreadable,
            skipped,
            log=logger,
        )
        if ok.any():
            images = batch["image"] if ok.all() else batch["image"][torch.from_numpy(np.flatnonzero(ok))]
            with torch.inference_mode():
                out = model(images.to(device, non_blocking=True))
            logits.append(out.float().cpu().numpy())
            indices.append(idx[ok])
        t_wait = time.perf_counter()
        if timing is not None:
            timing["forward_s"] += t_wait - t0
    if not logits:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(indices), np.concatenate(logits)


def temperature_scaling(logits: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> dict[str, Any]:
    """Fit T on a seeded `fraction` of the images, report the held-out rest before (T = 1) and after (T)."""
    fit, held = split_for_temperature(len(labels), fraction, seed)
    if len(fit) == 0 or len(held) == 0:
        raise ConfigError(
            f"--fit-temperature {fraction}: {len(labels)} images leave {len(fit)} to fit on and {len(held)} to "
            "report on; use a fraction that leaves both non-empty"
        )
    found = fit_temperature(logits[fit], labels[fit])
    t = found["temperature"]
    return {
        "fraction": float(fraction),
        "seed": int(seed),
        "num_fit": len(fit),
        "num_held_out": len(held),
        "temperature": t,
        "at_bound": found["at_bound"],
        "held_out_before": classification_metrics(logits[held], labels[held], 1.0),
        "held_out_after": classification_metrics(logits[held], labels[held], t),
        "fit_positions": fit,
        "held_out_positions": held,
    }


def summarize(logits: np.ndarray, labels: np.ndarray, cfg: ClsEvalConfig) -> dict[str, Any]:
    """The headline metrics of all images and, with cfg.fit_temperature, the temperature-scaling block."""
    metrics = classification_metrics(logits, labels)
    out: dict[str, Any] = {"metrics": {k: v for k, v in metrics.items() if v is not None}, "temperature": None}
    if cfg.fit_temperature is not None:
        out["temperature"] = temperature_scaling(logits, labels, float(cfg.fit_temperature), int(cfg.seed))
        out["metrics"]["temperature"] = out["temperature"]["temperature"]
    return out


def _loader(data: ClsData, cfg: ClsEvalConfig, device: torch.device, rank: int, world: int):
    """This rank's batches: the single-process batch sequence of consecutive images, every world-th from rank."""
    n, bs = len(data.labels), int(cfg.batch_size)
    batches = rank_batches(range(n), bs, rank, world)
    loader = torch.utils.data.DataLoader(
        data.dataset, batch_sampler=batches, num_workers=int(cfg.workers), pin_memory=device.type == "cuda"
    )
    return tqdm(
        loader, total=len(batches), desc=f"test_cls {data.name}", unit="batch", disable=not cfg.progress or rank
    )


def _gather(indices: np.ndarray, logits: np.ndarray, skipped: list, world: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Every rank's (indices, logits, skipped) merged in dataset order (a no-op in one process)."""
    if world > 1:
        parts = all_gather_objects((indices, logits, skipped))
        nonempty = [p for p in parts if len(p[0])]
        indices = np.concatenate([p[0] for p in nonempty]) if nonempty else indices
        logits = np.concatenate([p[1] for p in nonempty]) if nonempty else logits
        skipped = sorted((s for p in parts for s in p[2]), key=lambda s: s["index"])
    order = np.argsort(indices, kind="stable")
    return indices[order], logits[order], skipped


def _evaluate(cfg: ClsEvalConfig, device: torch.device, rank: int, world: int, t_start: float) -> EvalResult:
    size = int(cfg.image_size or DEFAULT_IMAGE_SIZE[cfg.dataset])
    data = load_cls_data(cfg.dataset, cfg.data_root, size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # [0, 1] pixels
    what = f"the {data.name} {data.split} split at {data.root} ({len(data.classes)} classes)"
    found = load_eval_classifier(
        cfg.backbone,
        cfg.dataset,
        what,
        CLASSIFIER_HINT,
        num_classes=len(data.classes),
        max_label=max(data.labels),
        arch=cfg.arch,
        trust=cfg.trust_checkpoint,
        mean=cfg.mean,
        std=cfg.std,
    )
    loaded, form, norm = found.loaded, found.form, found.norm
    data.dataset.normalize = Normalize(norm.mean, norm.std)
    model = found.model.to(device)
    out_dir = Path(cfg.out) if cfg.out is not None else default_out_dir(cfg.backbone, cfg.dataset)
    logger.info(
        "test_cls %s %s: %d images, %s (%s), %d px, mean %s std %s (%s), device %s, rank %d of %d",
        data.name,
        data.split,
        len(data.labels),
        loaded.path,
        loaded.arch,
        size,
        norm.mean,
        norm.std,
        norm.source,
        device,
        rank,
        world,
    )
    timing = {"data_wait_s": 0.0, "forward_s": 0.0}
    skipped: list[dict[str, Any]] = []
    indices, logits = classify(
        model, _loader(data, cfg, device, rank, world), device, cfg.skip_unreadable, skipped, data.image_ids, timing
    )
    indices, logits, skipped = _gather(indices, logits, skipped, world)
    if not len(indices):
        raise DatasetError(f"no image of {what} could be read ({len(skipped)} unreadable); nothing to evaluate")
    bad = np.flatnonzero(~np.isfinite(logits).all(axis=1))
    if bad.size:
        raise CheckpointError(
            f"{loaded.path}: the model gives non-finite logits on {bad.size} images (first: "
            f"{data.image_ids[int(indices[bad[0]])]}); the checkpoint's weights are broken (NaN or inf)"
        )
    labels = np.asarray(data.labels, dtype=np.int64)[indices]
    t0 = time.perf_counter()
    summary = summarize(logits, labels, cfg)
    timing["metrics_s"] = time.perf_counter() - t0
    timing["total_s"] = time.perf_counter() - t_start
    ids = [data.image_ids[int(i)] for i in indices]
    record = _record(cfg, data, loaded, form, norm, summary, ids, skipped, world, timing)
    rows = per_image_rows(indices, ids, labels, logits)
    files: dict[str, Path] = {}
    if rank == 0:
        files = _write(out_dir, record, rows, indices, ids, labels, logits, summary["temperature"], loaded)
        logger.info("test_cls %s: %s -> %s", data.name, _headline(record["metrics"]), out_dir)
    if world > 1:
        dist.barrier()
    return EvalResult(record=record, rows=rows, out_dir=out_dir, files=files)


def _headline(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())


def _record(cfg, data, loaded, form, norm: Normalization, summary, ids, skipped, world, timing) -> dict[str, Any]:
    ts = summary["temperature"]
    ts_block = None
    if ts is not None:
        ts_block = {k: v for k, v in ts.items() if not k.endswith("_positions")}
        ts_block["held_out_before"] = {k: v for k, v in ts["held_out_before"].items() if v is not None}
        ts_block["held_out_after"] = {k: v for k, v in ts["held_out_after"].items() if v is not None}
    return make_record(
        "classification",
        checkpoint_info(loaded.path, loaded.sha256, loaded.arch, loaded.meta.get("method")),
        data.name,
        data.split,
        summary["metrics"],
        data=data_identity(data.name, data.split, data.root, ids),
        # train_cls's block for the same inputs (clseval/identity.py): its validation and this are one report cell
        protocol=classification_protocol(data.preprocess, norm.mean, norm.std),
        tool="test_cls",
        layout=data.layout,
        normalization_source=norm.source,
        **{TRAIN_SEED: loaded.meta.get(TRAIN_SEED_META)},  # the training run's seed (this project's: mmengine meta)
        arch=loaded.arch,
        checkpoint_format=loaded.source_format,
        model_form=form,
        data_root=str(data.root),
        num_images=len(ids),
        num_images_in_split=len(data.labels),
        num_classes=len(data.classes),
        rms_calib_err_note=None
        if summary["metrics"].get("rms_calib_err") is not None
        else f"fewer than {RMS_BIN_SIZE} images: calib_err's reference fails (IndexError), no value",
        temperature_scaling=ts_block,
        skipped_unreadable={"count": len(skipped), "images": skipped},
        config=cfg.record_config(),
        world_size=world,
        timing=timing,
    )


def per_image_rows(indices: np.ndarray, ids: list[str], labels: np.ndarray, logits: np.ndarray) -> list[dict]:
    """One row per evaluated image (CSV_COLUMNS), in dataset order."""
    hits = topk_correct(logits, labels)
    conf, _ = confidence_and_correct(logits, labels)
    pred = topk_predictions(logits, 1)[:, 0]
    return [
        {
            "image_id": ids[j],
            "index": int(indices[j]),
            "label": int(labels[j]),
            "pred": int(pred[j]),
            "confidence": float(conf[j]),
            "correct_top1": int(hits[1][j]),
            "correct_top5": int(hits[5][j]),
        }
        for j in range(len(ids))
    ]


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """per_image.csv text (CSV_COLUMNS; the confidence with every digit of its float64)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (repr(r[k]) if isinstance(r[k], float) else r[k]) for k in CSV_COLUMNS})
    return buf.getvalue()


def _write(out_dir, record, rows, indices, ids, labels, logits, ts, loaded) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"per_image": out_dir / PER_IMAGE_CSV, "logits": out_dir / LOGITS_NAME, "figure": out_dir / FIGURE_NAME}
    atomic_write_text(files["per_image"], rows_csv(rows))
    arrays = {"logits": logits, "labels": labels, "indices": indices, "image_ids": np.asarray(ids, dtype=str)}
    panels = {"all images": confidence_and_correct(logits, labels)}
    if ts is not None:
        held = ts["held_out_positions"]
        arrays.update(temperature=np.float64(ts["temperature"]), fit_positions=ts["fit_positions"])
        panels = {
            **panels,
            "held out, T = 1": confidence_and_correct(logits[held], labels[held]),
            f"held out, T = {ts['temperature']:.3f}": confidence_and_correct(
                logits[held], labels[held], ts["temperature"]
            ),
        }
    atomic_savez(files["logits"], **arrays)
    write_reliability_diagram(
        files["figure"],
        panels,
        title=f"{Path(loaded.path).name} ({loaded.arch}) on {record['dataset']} {record['split']}",
    )
    files["results"] = write_record(out_dir, record)  # last: a complete results.json means complete files
    return files
