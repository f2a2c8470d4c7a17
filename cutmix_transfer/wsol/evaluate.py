"""The WSOL evaluator: one checkpoint (or saved score maps), one dataset split -> MaxBoxAcc / MaxBoxAccV2 / PxAP /
the paper's top-1 and GT-known localization, per-image rows, optional CAM dump and figures.

The flow (clovaai/wsolevaluation's seam: the scoring never touches a model, a model only makes maps):

    samples  datasets/wsol_data.load_eval_data   (raw CUB / ImageNet, wsolevaluation metadata, OpenImages)
    inputs   wsol/inputs.EvalImages               images + masks in the 224 frame, unreadable files reported
    maps     wsol/model.compute_scoremaps         GT-class CAM, bicubic to 224, per-image min-max
             or wsol/scoremaps.load_saved_maps    cams.npz or <scoremap_root>/<image_id>.npy, no checkpoint
    scoring  wsol/scoring.MapScorer               box curves (worker pool), BoxEvaluator, MaskEvaluator
    outputs  wsol/outputs                         results.json, per_image.csv, cams.npz, figures, the table

docs/wsol_protocol.md lists every protocol choice. Top-1 localization needs the CAM of the predicted class only
when the prediction is right, and then it is the GT-class CAM: so one map per image serves every metric.
Under ``torchrun`` (WORLD_SIZE > 1) each rank scores the single-process batches ``rank::world``; the integer counts
are all-reduced, the per-image rows gathered, and rank 0 writes everything: the result equals the single-process run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..cam import check_method
from ..checkpoints import LoadedBackbone
from ..datasets.common import check_unreadable
from ..datasets.wsol_data import DATASETS, EvalData, load_eval_data
from ..distributed import gather_rows, rank_batches, setup_torchrun
from ..errors import ConfigError, DatasetError
from ..io import atomic_savez, atomic_write_text
from ..normalization import Normalization
from ..results import PER_IMAGE_CSV, PER_IMAGE_IOUS, EvalResult, checkpoint_info, data_identity, write_record
from ..runtime import EvalOptions, check_input_size, resolve_device, seed_everything
from .boxes import RESIZE_LENGTH, resize_boxes
from .inputs import EvalImages
from .metrics import DEFAULT_IOU_THRESHOLDS, PAPER_CAM_THRESHOLD
from .model import compute_scoremaps, load_model
from .outputs import (
    NEEDS_CHECKPOINT,
    CamShard,
    make_wsol_record,
    rows_csv,
    scoremaps_checkpoint,
    write_figures,
    wsol_metrics,
)
from .scoremaps import SavedMaps, load_saved_maps
from .scoring import MapScorer, auto_box_workers

logger = logging.getLogger(__name__)

BOX_METRICS = ("gt_known_loc", "maxboxacc", "maxboxacc_v2", "top1_loc")


def default_workers() -> int:
    """Data-loader processes: 4, at most the cores this process may use (no PyTorch warning on small machines)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores))


@dataclass
class WSOLEvalConfig(EvalOptions):
    """Everything one evaluation depends on; the tool fills it from its arguments.

    backbone: the classifier checkpoint, or None with scoremaps (saved maps: a cams.npz or a wsolevaluation
    scoremap_root; localization metrics only); data_root None -> data/CUB_200_2011, data/ILSVRC or
    data/OpenImages; split None -> 'test' (CUB, OpenImages) / 'val' (ImageNet); out None ->
    work_dirs/wsol/<checkpoint or maps stem>_<dataset>; cam: 'cam' (fc weights on the last feature map) or a
    Grad-CAM-family name from cam.GRAD_CAM_METHODS; box_workers: processes for box extraction (-1: automatic,
    0: in the main process); device 'auto' -> cuda when visible, else cpu; the other run options are EvalOptions'.
    """

    backbone: str | os.PathLike | None = None
    dataset: Literal["cub", "imagenet", "openimages"] = "cub"
    metadata: str | os.PathLike | None = None
    cam: str = "cam"
    split: str | None = None
    iou_thresholds: Sequence[int] = DEFAULT_IOU_THRESHOLDS
    cam_curve_interval: float = 0.01
    fixed_threshold: float = PAPER_CAM_THRESHOLD
    save_cams: bool = False
    vis: int = 0
    batch_size: int = 32
    workers: int = field(default_factory=default_workers)
    box_workers: int = -1
    wsol_form: bool = True
    large_feature_map: bool = False
    input_size: int = RESIZE_LENGTH
    scoremaps: str | os.PathLike | None = None


def _validate_config(cfg: WSOLEvalConfig) -> None:
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"--dataset {cfg.dataset!r}: choose one of {', '.join(DATASETS)}")
    if (cfg.backbone is None) == (cfg.scoremaps is None):
        raise ConfigError(
            "give either --backbone (a classifier checkpoint) or --scoremaps (saved maps), not "
            + ("both" if cfg.backbone is not None else "neither")
        )
    check_method(cfg.cam)
    ious = [int(i) for i in cfg.iou_thresholds]
    if not ious or any(not 0 < i <= 100 for i in ious) or len(set(ious)) != len(ious) or 50 not in ious:
        raise ConfigError(
            f"--iou {' '.join(map(str, cfg.iou_thresholds))}: give distinct percentages in (0, 100] "
            f"that include 50 (MaxBoxAcc is defined at IoU 0.5), e.g. --iou 30 50 70"
        )
    if not 0.0 < float(cfg.cam_curve_interval) < 1.0:
        raise ConfigError(f"--cam-curve-interval {cfg.cam_curve_interval}: use a value in (0, 1), e.g. 0.01 or 0.001")
    if not 0.0 <= float(cfg.fixed_threshold) <= 1.0:
        raise ConfigError(f"--fixed-threshold {cfg.fixed_threshold}: use a value in [0, 1] (the CAM paper uses 0.2)")
    check_input_size(cfg.input_size)
    cfg.check_normalization(cfg.dataset)
    if cfg.scoremaps is not None and (cfg.mean is not None or cfg.std is not None):
        raise ConfigError(
            "--mean / --std normalise a checkpoint's inputs; saved --scoremaps are scored as stored: leave them out"
        )
    if cfg.batch_size < 1 or cfg.workers < 0 or cfg.vis < 0:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} / --workers {cfg.workers} / --vis {cfg.vis}: need a "
            f"batch size >= 1 and non-negative workers and vis count"
        )


def default_out_dir(backbone: str | os.PathLike, dataset: str) -> Path:
    """work_dirs/wsol/<checkpoint (or saved maps) file stem>_<dataset>."""
    return Path("work_dirs") / "wsol" / f"{Path(backbone).stem}_{dataset}"


def evaluate_wsol(cfg: WSOLEvalConfig) -> EvalResult:
    """Score one checkpoint (or saved maps) on one WSOL split and write results.json, per_image.csv (and
    cams.npz, figures). Under torchrun each rank evaluates its shard and rank 0 writes; every rank returns the
    same record (rows: all images on every rank)."""
    t_start = time.perf_counter()
    _validate_config(cfg)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    rank, world, created_group, device = setup_torchrun(device)
    try:
        return _evaluate(cfg, device, rank, world, t_start)
    finally:
        if created_group and dist.is_initialized():
            dist.destroy_process_group()


def _readable(batch: dict, samples: Sequence, skip: bool, skipped: list[dict]) -> np.ndarray:
    """Positions in the batch whose image and mask could be read; the others fail or are listed as skipped."""
    index = batch["index"].tolist()
    ok = check_unreadable(
        batch["error"], lambda j: {"index": index[j], "image_id": samples[index[j]].image_id}, skip, skipped, log=logger
    )
    return np.flatnonzero(ok)


def _norm_kwargs(norm: Normalization | None) -> dict[str, Any]:
    """The `mean` / `std` keywords the network inputs are normalised with (none for saved maps: no network)."""
    return {} if norm is None else {"mean": norm.mean, "std": norm.std}


def _evaluate(cfg: WSOLEvalConfig, device: torch.device, rank: int, world: int, t_start: float) -> EvalResult:
    data = load_eval_data(cfg.dataset, cfg.data_root, cfg.split, cfg.metadata, cfg.skip_unreadable)
    samples = data.samples
    model, loaded, saved, norm = None, None, None, None
    if cfg.scoremaps is None:
        found = load_model(
            cfg.backbone,
            cfg.dataset,
            data,
            arch=cfg.arch,
            trust=cfg.trust_checkpoint,
            wsol_form=cfg.wsol_form,
            large_feature_map=cfg.large_feature_map,
            mean=cfg.mean,
            std=cfg.std,
        )
        model, loaded, norm = found.model.to(device), found.loaded, found.norm
    else:
        saved = load_saved_maps(cfg.scoremaps, [s.image_id for s in samples])
    out_dir = Path(cfg.out) if cfg.out is not None else default_out_dir(cfg.backbone or cfg.scoremaps, cfg.dataset)
    # the single-process batches, every world-th from rank: each image is scored in the batch it has in one process,
    # so the maps, and every number, equal one process's bit for bit (batch composition can change the last bits)
    local_parts = [
        [i for batch in rank_batches(range(len(samples)), cfg.batch_size, r, world) for i in batch]
        for r in range(world)
    ]
    local = local_parts[rank]
    logger.info(
        "WSOL %s %s: %d images (%d on rank %d of %d), %s, device %s",
        cfg.dataset,
        data.split,
        len(samples),
        len(local),
        rank,
        world,
        f"{loaded.arch}, CAM {cfg.cam}" if loaded else f"saved maps {saved.path}",
        device,
    )
    scorer = MapScorer(
        local,
        cfg.iou_thresholds,
        cfg.cam_curve_interval,
        cfg.fixed_threshold,
        auto_box_workers(cfg.box_workers, device, world),
        has_boxes=data.has_boxes,
    )
    shard = CamShard(out_dir, rank, len(local)) if cfg.save_cams else None
    loader = torch.utils.data.DataLoader(
        EvalImages(samples, local, cfg.input_size, model is not None, **_norm_kwargs(norm)),
        batch_size=cfg.batch_size,
        shuffle=False,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    skipped: list[dict[str, Any]] = []
    timing = {"forward_s": 0.0, "data_wait_s": 0.0}
    try:
        t_wait = time.perf_counter()
        for batch in tqdm(
            loader, desc=f"WSOL {cfg.dataset} {data.split}", unit="batch", disable=not cfg.progress or rank != 0
        ):
            timing["data_wait_s"] += time.perf_counter() - t_wait
            ok = _readable(batch, samples, cfg.skip_unreadable, skipped)
            if ok.size:
                sel = torch.from_numpy(ok)
                idx_ok = [int(batch["index"][j]) for j in ok]
                labels = torch.tensor([int(samples[i].label) for i in idx_ok], dtype=torch.int64)
                t0 = time.perf_counter()
                if model is not None:
                    maps, logits = compute_scoremaps(
                        model, batch["image"][sel].to(device, non_blocking=True), labels, cfg.cam
                    )
                else:
                    maps, logits = saved.maps_for([samples[i].image_id for i in idx_ok]), None
                timing["forward_s"] += time.perf_counter() - t0
                gts = None
                if data.has_boxes:
                    gts = [
                        resize_boxes(samples[i].boxes_xyxy, tuple(batch["size_wh"][j].tolist()))
                        for i, j in zip(idx_ok, ok)
                    ]
                scorer.add(
                    idx_ok,
                    maps,
                    labels.numpy(),
                    gts,
                    batch["mask"][sel].numpy(),
                    batch["has_mask"].numpy()[ok],
                    None if data.has_boxes else batch["ignore"][sel].numpy(),
                    logits,
                )
                if shard is not None:
                    shard.write(scorer.positions(idx_ok), maps)
            t_wait = time.perf_counter()
    finally:
        scorer.close()
    timing.update(scorer.timing)
    if world > 1:
        scorer.merge_ranks(device)
    skipped = gather_rows(skipped, world)
    if scorer.num_images() == 0:
        raise DatasetError(
            f"no image of the {cfg.dataset} {data.split!r} split under {data.data_root} could be "
            f"read ({len(skipped)} skipped as unreadable); nothing to evaluate"
        )
    rows = gather_rows(scorer.rows(samples, data.class_names), world)
    files: dict[str, Path] = {}
    if shard is not None:
        source = (
            {"checkpoint_path": str(loaded.path), "checkpoint_sha256": loaded.sha256, "arch": loaded.arch}
            if loaded
            else None
        )
        if saved is not None and saved.source_checkpoint:
            source = {f"checkpoint_{k}" if k != "arch" else k: v for k, v in saved.source_checkpoint.items() if v}
        cams = shard.finish(rows, local_parts, source)
        if cams is not None:
            files["cams"] = cams
    timing["total_s"] = time.perf_counter() - t_start
    record = _record(cfg, data, loaded, saved, scorer, skipped, timing, world, norm)
    record["data"] = data_identity(cfg.dataset, data.split, data.data_root, [r["image_id"] for r in rows])
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        files["results"] = write_record(out_dir, record)
        files["per_image"] = out_dir / PER_IMAGE_CSV
        atomic_write_text(files["per_image"], rows_csv(rows))
        if rows and "iou_curves" in rows[0]:  # IoU at every CAM threshold: the report's bootstrap of MaxBoxAcc
            files["per_image_ious"] = out_dir / PER_IMAGE_IOUS
            atomic_savez(
                files["per_image_ious"],
                image_ids=np.array([str(r["image_id"]) for r in rows]),
                iou_v1=np.stack([r["iou_curves"][0] for r in rows]),
                iou_v2=np.stack([r["iou_curves"][1] for r in rows]),
            )
        if cfg.vis > 0:
            files.update(_figures(cfg, data, model, saved, rows, record, out_dir / "vis", device, norm))
        logger.info(
            "WSOL %s %s: %s -> %s",
            cfg.dataset,
            data.split,
            ", ".join(f"{k} {v:.2f}" for k, v in record["metrics"].items() if "_iou" not in k),
            out_dir,
        )
    if world > 1:
        dist.barrier()
    return EvalResult(record=record, rows=rows, out_dir=out_dir, files=files)


def _figures(
    cfg: WSOLEvalConfig,
    data: EvalData,
    model: torch.nn.Module | None,
    saved: SavedMaps | None,
    rows: list[dict],
    record: dict,
    vis_dir: Path,
    device: torch.device,
    norm: Normalization | None,
) -> dict[str, Path]:
    """The figures, with the maps of the shown images recomputed exactly as scored (or read back)."""
    samples = data.samples

    def maps_for(indices: list[int], images: list[torch.Tensor]) -> np.ndarray:
        if model is None:
            return saved.maps_for([samples[i].image_id for i in indices])
        labels = torch.tensor([int(samples[i].label) for i in indices], dtype=torch.int64)
        return compute_scoremaps(model, torch.stack(images).to(device), labels, cfg.cam)[0]

    best = record.get("best_thresholds", {}).get("maxboxacc", 0.0)
    files = write_figures(
        vis_dir, cfg.vis, samples, rows, record, best, maps_for, cfg.input_size, cfg.batch_size, **_norm_kwargs(norm)
    )
    logger.info("figures written to %s", vis_dir)
    return files


def _record(
    cfg: WSOLEvalConfig,
    data: EvalData,
    loaded: LoadedBackbone | None,
    saved: SavedMaps | None,
    scorer: MapScorer,
    skipped: list[dict],
    timing: dict,
    world: int,
    norm: Normalization | None = None,
) -> dict[str, Any]:
    box, mask = scorer.compute()
    metrics, best, curves = wsol_metrics(box, mask, None if data.has_boxes else scorer.top1_cls())
    ious = [int(i) for i in cfg.iou_thresholds]
    not_reported: dict[str, str] = {}
    if not data.has_boxes:
        not_reported.update(
            {k: f"not applicable: {cfg.dataset} has masks and no boxes (PxAP is its metric)" for k in BOX_METRICS}
        )
    if saved is not None:
        not_reported.update(
            {
                k: "needs a checkpoint: saved score maps carry no classification (run with "
                "--backbone for top-1 numbers)"
                for k in NEEDS_CHECKPOINT
                if k not in not_reported
            }
        )
    config = cfg.record_config()
    config["iou_thresholds"] = list(ious)
    if loaded is not None:
        checkpoint = checkpoint_info(loaded.path, loaded.sha256, loaded.arch, loaded.meta.get("method"))
        cam = "GT class; bicubic resize to 224, per-image min-max, 8-bit quantised for boxes"
        source = {"arch": loaded.arch, "cam_method": cfg.cam, "checkpoint_format": loaded.source_format}
    else:
        checkpoint = scoremaps_checkpoint(saved.path, saved.sha256, saved.source_checkpoint)
        cam = (
            "saved maps: 224x224 maps in [0, 1] as stored, other sizes bicubic to 224 then per-image min-max; "
            "8-bit quantised for boxes"
        )
        source = {
            "arch": saved.source_checkpoint.get("arch") if saved.source_checkpoint else None,
            "cam_method": None,
            "scoremaps": {"path": str(saved.path), "layout": saved.layout, "sha256": saved.sha256},
            "source_checkpoint": saved.source_checkpoint,
        }
    extra: dict[str, Any] = {}
    if norm is not None:  # the inputs' statistics change every number; their source (provenance) goes beside
        extra["normalization_source"] = norm.source
    if not_reported:
        extra["not_reported"] = not_reported
    return make_wsol_record(
        checkpoint,
        cfg.dataset,
        data.split,
        metrics,
        **source,
        data_root=str(data.data_root),
        data_source=data.source,
        num_images=scorer.num_images(),
        num_images_in_split=len(data.samples),
        num_mask_images=mask["num_images"] if mask else 0,
        skipped_unreadable={"count": len(skipped), "images": skipped},
        best_thresholds=best,
        protocol={
            "image_size": RESIZE_LENGTH,
            "input_size": cfg.input_size,
            "resize": f"bilinear (PIL) to {cfg.input_size}x{cfg.input_size} for the network, no crop; scored at 224",
            "cam": cam,
            "cam_curve_interval": float(cfg.cam_curve_interval),
            "iou_thresholds": list(ious),
            "fixed_threshold": float(cfg.fixed_threshold),
            "fixed_iou": 50,
            "maxboxacc": "V1: largest contour, IoU 0.5",
            "maxboxacc_v2": "all contours, mean over IoUs",
            "wsol_form": cfg.wsol_form,
            "large_feature_map": cfg.large_feature_map,
            **(norm.protocol() if norm is not None else {}),
        },
        curves=curves,
        config=config,
        world_size=world,
        timing=timing,
        **extra,
    )
