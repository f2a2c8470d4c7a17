"""What an evaluation writes: cams.npz (streamed), per_image.csv, the results.json record, the figures' cases,
and the metrics table the tool prints last."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist

from ..datasets.common import IMAGENET_MEAN, IMAGENET_STD
from ..distributed import all_gather_objects
from ..results import checkpoint_info, make_record
from .boxes import RESIZE_LENGTH, boxes_at_threshold, resize_boxes
from .inputs import load_image_224
from .visualize import GRID_MAX, Case, case_title, save_boxacc_curves, save_case, save_grid, save_pr_curve

CSV_COLUMNS = (
    "index",
    "image_id",
    "label",
    "class_name",
    "predicted",
    "predicted_name",
    "correct",
    "confidence",
    "iou",
    "hit",
    "iou_fixed",
    "iou_v2",
)
NEEDS_CHECKPOINT = ("top1_cls", "top1_loc", "top1_loc_at_best_threshold")
TABLE_METRICS = (
    ("top1_cls", "top-1 cls"),
    ("top1_loc", "top-1 loc"),
    ("gt_known_loc", "GT-known loc"),
    ("maxboxacc", "MaxBoxAcc"),
    ("maxboxacc_v2", "MaxBoxAccV2"),
    ("pxap", "PxAP"),
)


# ----------------------------------------------------------------------------------------------------------
# cams.npz, streamed (a CUB test set is 1.2 GB of float32 maps; never held twice in memory)
# ----------------------------------------------------------------------------------------------------------
def _write_npy_entry(zf: zipfile.ZipFile, name: str, shape: tuple[int, ...], dtype: np.dtype, chunks) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


def _write_small(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    zf.writestr(name + ".npy", buf.getvalue())


def write_cams_npz(
    path: str | os.PathLike,
    image_ids: Sequence[str],
    cam_chunks: Iterable[np.ndarray],
    num: int,
    size: tuple[int, int] = (RESIZE_LENGTH, RESIZE_LENGTH),
    extra: dict[str, str] | None = None,
) -> None:
    """Write ``image_ids`` (N,) str and ``cams`` (N, H, W) float32 to an .npz (np.load reads it) atomically,
    streaming ``cam_chunks`` (an iterable of (n_i, H, W) arrays in order) into the archive; ``extra`` strings
    (the source checkpoint's path, sha256, arch) are stored as 0-d arrays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_small(zf, "image_ids", np.asarray(list(image_ids), dtype=str))
            _write_npy_entry(zf, "cams", (int(num), int(size[0]), int(size[1])), np.float32, cam_chunks)
            for key, value in (extra or {}).items():
                _write_small(zf, key, np.asarray(str(value)))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def assemble_cams(
    out_dir: Path,
    order_parts: list[list[int]],
    local_parts: list[list[int]],
    rows: list[dict],
    extra: dict[str, str] | None = None,
) -> Path:
    """Stream every rank's shard of score maps (<out>/.cams.rank<r>.npy, rank r holding the samples
    `local_parts[r]`, written in the local order `order_parts[r]`) into <out>/cams.npz in dataset order (rows are
    sorted)."""
    shards = []
    where: dict[int, tuple[int, int]] = {}  # global index -> (rank, row in that rank's shard)
    for r, order in enumerate(order_parts):
        shards.append(np.load(out_dir / f".cams.rank{r}.npy", mmap_mode="r"))
        for j, local_pos in enumerate(order):
            where[local_parts[r][local_pos]] = (r, j)

    def chunks():
        for row in rows:
            r, j = where[row["index"]]
            yield shards[r][j : j + 1]

    path = out_dir / "cams.npz"
    write_cams_npz(path, [row["image_id"] for row in rows], chunks(), len(rows), extra=extra)
    return path


class CamShard:
    """This rank's score maps, written as they are scored into <out>/.cams.rank<r>.npy (a memmap), then streamed
    by rank 0 into cams.npz in dataset order."""

    def __init__(self, out_dir: Path, rank: int, num_local: int) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir, self.rank = out_dir, rank
        self.path = out_dir / f".cams.rank{rank}.npy"
        self.array = np.lib.format.open_memmap(
            self.path, mode="w+", dtype=np.float32, shape=(max(1, num_local), RESIZE_LENGTH, RESIZE_LENGTH)
        )
        self.order: list[int] = []  # local positions in the order their maps were written

    def write(self, positions: np.ndarray, maps: np.ndarray) -> None:
        """Append the maps of these local positions."""
        start = len(self.order)
        self.array[start : start + len(positions)] = maps
        self.order.extend(int(p) for p in positions)

    def finish(self, rows: list[dict], local_parts: list[list[int]], extra: dict[str, str] | None) -> Path | None:
        """Assemble cams.npz on rank 0 (every rank's rows, sorted; `local_parts[r]`: the samples rank r holds);
        remove the shards. Returns its path on rank 0."""
        self.array.flush()
        world = len(local_parts)
        order_parts = all_gather_objects(self.order) if world > 1 else [self.order]
        path = assemble_cams(self.out_dir, order_parts, local_parts, rows, extra) if self.rank == 0 else None
        if world > 1:
            dist.barrier()
        del self.array
        self.path.unlink(missing_ok=True)
        return path


# ----------------------------------------------------------------------------------------------------------
# per_image.csv and the record
# ----------------------------------------------------------------------------------------------------------
def rows_csv(rows: list[dict[str, Any]]) -> str:
    """The per-image rows as CSV text (floats with 6 decimals; '' where a field does not apply)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in CSV_COLUMNS})
    return buf.getvalue()


def wsol_metrics(box: dict | None, mask: dict | None, cls: float | None) -> tuple[dict[str, float], dict, dict]:
    """(metrics, best thresholds, curves) of a record from the evaluators' outputs; `cls` is top-1 classification
    for a dataset without boxes (None: no classification)."""
    metrics: dict[str, float] = {}
    best: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    if box is not None:
        ious = box["iou_thresholds"]
        for k in ("top1_cls", "top1_loc", "gt_known_loc", "maxboxacc", "maxboxacc_v2", "top1_loc_at_best_threshold"):
            if box[k] is not None:
                metrics[k] = box[k]
        for iou in ious:
            metrics[f"maxboxacc_v1_iou{iou}"] = box[f"maxboxacc_v1_iou{iou}"]
            metrics[f"maxboxacc_v2_iou{iou}"] = box[f"maxboxacc_v2_iou{iou}"]
        best["maxboxacc"] = box["maxboxacc_best_threshold"]
        for iou in ious:
            best[f"maxboxacc_v1_iou{iou}"] = box[f"best_threshold_v1_iou{iou}"]
            best[f"maxboxacc_v2_iou{iou}"] = box[f"best_threshold_v2_iou{iou}"]
        curves["thresholds"] = box["thresholds"]
        for iou in ious:
            curves[f"boxacc_v1_iou{iou}"] = box[f"boxacc_v1_iou{iou}"]
            curves[f"boxacc_v2_iou{iou}"] = box[f"boxacc_v2_iou{iou}"]
            if f"top1_loc_v1_iou{iou}" in box:
                curves[f"top1_loc_v1_iou{iou}"] = box[f"top1_loc_v1_iou{iou}"]
    elif cls is not None:
        metrics["top1_cls"] = cls
    if mask is not None:
        metrics["pxap"] = mask["pxap"]
        curves["pxap"] = {"thresholds": mask["pr_thresholds"], "precision": mask["precision"], "recall": mask["recall"]}
    return metrics, best, curves


def scoremaps_checkpoint(maps_path: Path, maps_sha256: str, source: dict[str, str] | None) -> dict[str, Any]:
    """The record's checkpoint block of a maps-only run: keyed by the maps' sha256 (method from the source
    checkpoint's file name when the maps carry one)."""
    name = source["path"] if source and source.get("path") else str(maps_path)
    info = checkpoint_info(name, maps_sha256, source.get("arch") if source else None)
    info["path"] = str(maps_path)
    return info


def make_wsol_record(
    checkpoint: dict[str, Any], dataset: str, split: str, metrics: dict[str, float], **extra: Any
) -> dict[str, Any]:
    """The results.json record of a WSOL evaluation (results.make_record, kind 'wsol')."""
    return make_record("wsol", checkpoint, dataset, split, metrics, **extra)


# ----------------------------------------------------------------------------------------------------------
# figures (visualize draws; this picks the images and gathers their maps and boxes)
# ----------------------------------------------------------------------------------------------------------
def write_figures(
    vis_dir: Path,
    n: int,
    samples: Sequence,
    rows: list[dict[str, Any]],
    record: dict[str, Any],
    best_threshold: float,
    maps_for: Callable[[list[int], list[Any]], np.ndarray],
    input_size: int,
    batch_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> dict[str, Path]:
    """<vis_dir>/curves.png, pxap_pr.png (with masks), best_worst.png and images/<n>_<name>.png for the first
    `n` images; `maps_for(indices, images)` gives the scored maps of those samples from their network inputs
    (recomputed as scored, or read back from saved maps); `mean` / `std` normalise the network inputs as scored."""
    files: dict[str, Path] = {}
    if "curves" in record and "thresholds" in record["curves"]:
        files["vis_curves"] = save_boxacc_curves(vis_dir / "curves.png", record)
    if "pxap" in record["metrics"]:
        files["vis_pxap"] = save_pr_curve(vis_dir / "pxap_pr.png", record)
    if not rows or "thresholds" not in record["curves"]:
        return files
    k = min(n, GRID_MAX, len(rows))
    first = rows[:n]
    best = sorted(rows, key=lambda r: (-r["iou"], r["index"]))[:k]
    worst = sorted(rows, key=lambda r: (r["iou"], r["index"]))[:k]
    wanted = sorted({r["index"] for r in first + best + worst})
    cases: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for start in range(0, len(wanted), max(1, int(batch_size))):
        chunk = wanted[start : start + int(batch_size)]
        loaded = [load_image_224(samples[i].path, input_size=input_size, mean=mean, std=std) for i in chunk]
        maps = maps_for(chunk, [t for t, _, _ in loaded])
        for i, (_, rgb, size_wh), smap in zip(chunk, loaded, maps):
            s = samples[i]
            wh = tuple(s.size_wh) if all(s.size_wh) else size_wh
            cases[i] = (
                rgb,
                smap,
                resize_boxes(s.boxes_xyxy, wh),
                boxes_at_threshold(smap, best_threshold, multi_contour=False),
            )
    by_index = {r["index"]: r for r in rows}

    def case(index: int, compact: bool) -> Case:
        rgb, smap, gt, pred = cases[index]
        return Case(rgb, smap, gt, pred, case_title(by_index[index], best_threshold, compact))

    for j, row in enumerate(first):
        name = Path(row["image_id"]).stem
        files[f"vis_image_{j}"] = save_case(vis_dir / "images" / f"{j:04d}_{name}.png", case(row["index"], False))
    files["vis_grid"] = save_grid(
        vis_dir / "best_worst.png",
        [("best", [case(r["index"], True) for r in best]), ("worst", [case(r["index"], True) for r in worst])],
    )
    return files


def metrics_table(metrics: dict[str, float], not_applicable: Sequence[str] = ()) -> str:
    """The headline metrics as a small aligned two-column table (n/a where a metric does not apply)."""
    lines = []
    names = [(k, label) for k, label in TABLE_METRICS if k in metrics or k in not_applicable]
    width = max((len(label) for _, label in names), default=0)
    for key, label in names:
        value = f"{metrics[key]:6.2f}" if key in metrics else "   n/a"
        lines.append(f"{label:<{width}}  {value}")
    return "\n".join(lines)
