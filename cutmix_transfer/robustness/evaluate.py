"""The robustness evaluator: one classifier checkpoint, one dataset split -> clean top-1, FGSM top-1 per eps,
centre / boundary occlusion curves and in-between-class curves (CutMix paper, section 4.4, Table 11, Figure 5).

Pipeline (docs/robustness_protocol.md lists every choice):
- image: RGB, resize the short side to S / 0.875, centre crop S (S = --image-size, 224: the ImageNet val
  protocol, 256 -> 224), pixels in [0, 1]; the network normalises them itself (`PixelClassifier`, with the
  statistics the checkpoint was trained with: --mean / --std, else its meta's, else the dataset's, resolved once
  by evalmodel.load_eval_classifier), so the attack and the occlusions are built on pixels, in the space
  --fgsm-space / --occlusion-fill choose, with those statistics;
- pass 1 over the images, one decoded batch at a time: clean logits, FGSM at every eps (one backward for all
  eps), one forward per hole size for centre and for boundary occlusion;
- pass 2 over seeded random pairs of images of different classes: one forward per Mixup ratio and per CutMix
  side on blends built from the pair's two decoded images.
Under torchrun (WORLD_SIZE > 1) rank r processes the batches r, r + world, ... of the single-process batch
sequence: every image is classified in exactly the batch it has in one process, so the per-image predictions,
and the numbers, equal the single-process run. Rank 0 writes results.json, per_image.csv, predictions.npz and
curves.png.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..datasets.common import check_unreadable, load_rgb
from ..datasets.transforms import build_transform
from ..datasets.wsol_data import BOX_DATASETS as DATASETS
from ..datasets.wsol_data import load_eval_data
from ..distributed import gather_rows, rank_batches, run_on_ranks
from ..errors import ConfigError, DatasetError
from ..evalmodel import box_data_classes, load_eval_classifier
from ..io import atomic_savez, atomic_write_text
from ..normalization import Normalization
from ..results import PER_IMAGE_CSV, EvalResult, checkpoint_info, data_identity, make_record, write_record
from ..runtime import EvalOptions, check_input_size, resolve_device, seed_everything
from .attacks import PAPER_EPS, PixelClassifier, check_eps, check_space, eps_key, fgsm_predictions
from .curves import cutmix_predictions, mixup_predictions, occlusion_predictions, top1_accuracy, top1_error
from .figures import plot_run_curves
from .inbetween import DEFAULT_MIXUP_RATIOS, check_ratios, cutmix_ratio, draw_pairs, hit_rates
from .occlusion import DEFAULT_SIDES, check_fill, check_sides, fill_value, scale_sides

logger = logging.getLogger(__name__)

Test = Literal["fgsm", "occlusion", "inbetween"]
TESTS: tuple[str, ...] = ("fgsm", "occlusion", "inbetween")
DEFAULT_PAIRS = 50_000  # Appendix E.1: "we first sample 50,000 pairs of images from the ImageNet validation set"
CROP_FRACTION = 0.875  # resize to S / 0.875, centre crop S: 256 -> 224, the ImageNet val protocol
# what a checkpoint whose head does not fit the data should be replaced by (load_eval_classifier's CheckpointError)
CLASSIFIER_HINT = (
    "evaluate a classifier of this dataset's classes (fine-tune one with tools/train_cls.py) or point --data-root "
    "at its dataset"
)


@dataclass
class RobustnessConfig(EvalOptions):
    """Everything one evaluation depends on; the tool fills it from its arguments.

    Sides (hole_sizes, cutmix_sides) are in the 224 frame and scale with image_size; eps in 1/255 units;
    mixup_ratios are lambda, the share of the first image x_A; fgsm_space: 'pixels' | 'normalized';
    occlusion_fill: 'black' | 'mean' (docs/robustness_protocol.md).
    wsol_form None: the form the checkpoint records in meta['cutmix_transfer']['wsol'] (standard torchvision
    form when it records nothing, as for ImageNet checkpoints); max_images None: every image of the split; the
    run options (device, seed, ...) are EvalOptions'.
    """

    backbone: str | os.PathLike
    dataset: Literal["cub", "imagenet"] = "imagenet"
    tests: Sequence[str] = TESTS
    eps: Sequence[float] = (PAPER_EPS,)
    hole_sizes: Sequence[int] = DEFAULT_SIDES
    mixup_ratios: Sequence[float] = DEFAULT_MIXUP_RATIOS
    cutmix_sides: Sequence[int] = DEFAULT_SIDES
    pairs: int = DEFAULT_PAIRS
    fgsm_space: str = "pixels"
    occlusion_fill: str = "black"
    max_images: int | None = None
    image_size: int = 224
    wsol_form: bool | None = None
    batch_size: int = 64
    workers: int = 4


# ----------------------------------------------------------------------------------------------------------
# Data and model
# ----------------------------------------------------------------------------------------------------------
def pixel_transform(image_size: int):
    """PIL image -> (3, S, S) float32 pixels in [0, 1]: the 'imagenet_test' preset (resize S / 0.875, centre crop
    S) with an identity normalisation, since the attacks act before normalisation (PixelClassifier does it)."""
    return build_transform("imagenet_test", int(image_size), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


class _Images(torch.utils.data.Dataset):
    """Pixels of sample `index`, or of both images of pair `index` (pairs given). Never raises: a read failure
    comes back as an error text, so the main process can name the file."""

    def __init__(self, samples: Sequence, image_size: int, pairs: np.ndarray | None = None) -> None:
        self.samples, self.size, self.pairs = samples, int(image_size), pairs
        self.transform = pixel_transform(image_size)

    def __len__(self) -> int:
        return len(self.samples) if self.pairs is None else len(self.pairs)

    def _load(self, i: int) -> tuple[torch.Tensor, str]:
        path = self.samples[i].path
        try:
            return self.transform(load_rgb(path)), ""
        except Exception as e:  # noqa: BLE001 -- any decoder failure means "unreadable"
            return torch.zeros(3, self.size, self.size), f"unreadable image: {path} ({type(e).__name__}: {e})"

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.pairs is None:
            pixels, err = self._load(index)
            return {"index": index, "pixels": pixels, "error": err}
        (a, err_a), (b, err_b) = self._load(int(self.pairs[index, 0])), self._load(int(self.pairs[index, 1]))
        return {"index": index, "a": a, "b": b, "error": err_a or err_b}


def select_images(n: int, max_images: int | None, seed: int) -> list[int]:
    """Indices of the images to evaluate: all n, or a seeded random subset of max_images in dataset order."""
    if max_images is None or max_images >= n:
        return list(range(n))
    rng = np.random.default_rng([int(seed), 0])
    return sorted(int(i) for i in rng.choice(n, size=int(max_images), replace=False))


# ----------------------------------------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------------------------------------
def validate_config(cfg: RobustnessConfig) -> None:
    """ConfigError for any option that cannot work, before anything is loaded."""
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"--dataset {cfg.dataset!r}: choose one of {', '.join(DATASETS)}")
    tests = list(cfg.tests)
    if not tests or any(t not in TESTS for t in tests) or len(set(tests)) != len(tests):
        raise ConfigError(f"--tests {' '.join(map(str, tests))}: choose one or more of {', '.join(TESTS)}, each once")
    check_eps(cfg.eps)
    check_space(cfg.fgsm_space)
    check_fill(cfg.occlusion_fill)
    check_sides(cfg.hole_sizes, "--hole-sizes")
    check_sides(cfg.cutmix_sides, "--cutmix-sides")
    check_ratios(cfg.mixup_ratios)
    check_input_size(cfg.image_size)
    cfg.check_normalization(cfg.dataset)
    if "inbetween" in tests and int(cfg.pairs) < 1:
        raise ConfigError(f"--pairs {cfg.pairs}: the in-between test needs at least one pair of images")
    if cfg.max_images is not None and int(cfg.max_images) < 1:
        raise ConfigError(f"--max-images {cfg.max_images}: give a positive number of images (or leave it out: all)")
    if cfg.batch_size < 1 or cfg.workers < 0:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} / --workers {cfg.workers}: need a batch size >= 1 and non-negative workers"
        )


def default_out_dir(backbone: str | os.PathLike, dataset: str) -> Path:
    """work_dirs/robustness/<checkpoint file stem>_<dataset>."""
    return Path("work_dirs") / "robustness" / f"{Path(backbone).stem}_{dataset}"


def evaluate_robustness(cfg: RobustnessConfig) -> EvalResult:
    """Run the requested tests on one checkpoint and write results.json, per_image.csv, predictions.npz and
    curves.png. Under torchrun each rank runs its batches and rank 0 writes; every rank returns the record."""
    t_start = time.perf_counter()
    validate_config(cfg)
    seed_everything(cfg.seed)
    return run_on_ranks(
        lambda device, rank, world: _evaluate(cfg, device, rank, world, t_start), resolve_device(cfg.device)
    )


def _check_errors(batch: dict, names: list[str], key: str, skip: bool, skipped: list[dict]) -> np.ndarray:
    """Which rows of a batch decoded; an unreadable image raises DatasetError unless `skip` (then it is listed
    in `skipped` as {index, <key>: name, error})."""
    return check_unreadable(
        batch["error"], lambda j: {"index": int(batch["index"][j]), key: names[j]}, skip, skipped, log=logger
    )


@dataclass
class _Run:
    """What both passes of one evaluation share."""

    cfg: RobustnessConfig
    model: PixelClassifier
    samples: list
    device: torch.device
    rank: int
    world: int
    timing: dict[str, float]

    def batches(self, dataset: _Images, items: Sequence[int], what: str):
        """(batch, seconds waited for it) over this rank's batches of `items`, with a progress bar on rank 0."""
        batches = rank_batches(items, self.cfg.batch_size, self.rank, self.world)
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, num_workers=self.cfg.workers, pin_memory=self.device.type == "cuda"
        )
        t_wait = time.perf_counter()
        for batch in tqdm(
            loader,
            total=len(batches),
            desc=f"robustness {self.cfg.dataset} {what}",
            unit="batch",
            disable=not self.cfg.progress or self.rank != 0,
        ):
            self.timing["data_wait_s"] += time.perf_counter() - t_wait
            yield batch
            t_wait = time.perf_counter()

    def timed(self, key: str, t0: float) -> None:
        self.timing[key] += time.perf_counter() - t0


def _image_pass(
    run: _Run, selected: list[int], tests: list[str], eps: list[float], hole_px: list[int]
) -> tuple[list[dict], list[dict]]:
    """Pass 1: clean, FGSM and occlusion predictions of each decoded batch -> (rows by image, skipped images)."""
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    samples, model = run.samples, run.model
    for batch in run.batches(_Images(samples, run.cfg.image_size), selected, "images"):
        ids = [samples[int(i)].image_id for i in batch["index"]]
        ok = _check_errors(batch, ids, "image_id", run.cfg.skip_unreadable, skipped)
        if not ok.any():
            continue
        idx = [int(batch["index"][j]) for j in np.flatnonzero(ok)]
        pixels = batch["pixels"][torch.from_numpy(np.flatnonzero(ok))].to(run.device, non_blocking=True)
        labels = torch.tensor([int(samples[i].label) for i in idx], dtype=torch.int64)
        t0 = time.perf_counter()
        adv = None
        if "fgsm" in tests:
            logits, adv = fgsm_predictions(model, pixels, labels.to(run.device), eps, run.cfg.fgsm_space)
            run.timed("fgsm_s", t0)
        else:
            with torch.inference_mode():
                logits = model(pixels)
            run.timed("clean_s", t0)
        conf, pred = torch.softmax(logits.float(), dim=1).cpu().max(dim=1)
        t0 = time.perf_counter()
        occ = {}
        if "occlusion" in tests:
            fill = fill_value(run.cfg.occlusion_fill, model.mean)
            occ = {m: occlusion_predictions(model, pixels, hole_px, m, fill).cpu() for m in ("center", "boundary")}
        run.timed("occlusion_s", t0)
        for j, i in enumerate(idx):
            row = {"index": i, "label": int(labels[j]), "clean_pred": int(pred[j]), "clean_confidence": float(conf[j])}
            if adv is not None:
                row["fgsm_pred"] = adv[j].cpu().tolist()
            for m, p in occ.items():
                row[f"{m}_pred"] = p[j].tolist()
            rows.append(row)
    return rows, skipped


def _pair_pass(run: _Run, pairs: np.ndarray, ratios: list[float], cut_px: list[int]) -> tuple[list[dict], list[dict]]:
    """Pass 2: Mixup and CutMix predictions of each batch of pairs -> (rows by pair, skipped pairs)."""
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    samples = run.samples
    for batch in run.batches(_Images(samples, run.cfg.image_size, pairs), range(len(pairs)), "pairs"):
        ids = [f"{samples[pairs[int(p), 0]].image_id} + {samples[pairs[int(p), 1]].image_id}" for p in batch["index"]]
        ok = _check_errors(batch, ids, "images", run.cfg.skip_unreadable, skipped)
        if not ok.any():
            continue
        sel = torch.from_numpy(np.flatnonzero(ok))
        a, b = batch["a"][sel].to(run.device), batch["b"][sel].to(run.device)
        t0 = time.perf_counter()
        mix = mixup_predictions(run.model, a, b, ratios).cpu()
        cut = cutmix_predictions(run.model, a, b, cut_px).cpu()
        run.timed("inbetween_s", t0)
        for j, p in enumerate(int(batch["index"][k]) for k in np.flatnonzero(ok)):
            rows.append({"index": p, "mixup_pred": mix[j].tolist(), "cutmix_pred": cut[j].tolist()})
    return rows, skipped


def _evaluate(cfg: RobustnessConfig, device: torch.device, rank: int, world: int, t_start: float) -> EvalResult:
    data = load_eval_data(cfg.dataset, cfg.data_root, None)
    # the checkpoint's classifier in the form it was trained in, fed [0, 1] pixels, without parameter gradients
    found = load_eval_classifier(
        cfg.backbone,
        cfg.dataset,
        hint=CLASSIFIER_HINT,
        arch=cfg.arch,
        trust=cfg.trust_checkpoint,
        wsol_form=cfg.wsol_form,
        mean=cfg.mean,
        std=cfg.std,
        **box_data_classes(cfg.dataset, data),
    )
    loaded, form, norm = found.loaded, found.form, found.norm
    # the one place the statistics go: the attacks, the 'mean' fill and the 'normalized' step read them off the model
    model = PixelClassifier(found.model, norm.mean, norm.std).eval()
    model.requires_grad_(False)
    samples = data.samples
    size = int(cfg.image_size)
    tests, eps = list(cfg.tests), check_eps(cfg.eps)
    hole_px, cut_px = scale_sides(cfg.hole_sizes, size), scale_sides(cfg.cutmix_sides, size)
    ratios = check_ratios(cfg.mixup_ratios)
    selected = select_images(len(samples), cfg.max_images, cfg.seed)
    out_dir = Path(cfg.out) if cfg.out is not None else default_out_dir(cfg.backbone, cfg.dataset)
    logger.info(
        "robustness %s %s: %d of %d images, tests %s, %s (%s form), input %d px, mean %s std %s (%s), device %s, "
        "rank %d of %d",
        cfg.dataset,
        data.split,
        len(selected),
        len(samples),
        " ".join(tests),
        loaded.arch,
        "WSOL" if form["wsol_form"] else "standard",
        size,
        norm.mean,
        norm.std,
        norm.source,
        device,
        rank,
        world,
    )
    timing = {"data_wait_s": 0.0, "clean_s": 0.0, "fgsm_s": 0.0, "occlusion_s": 0.0, "inbetween_s": 0.0}
    run = _Run(cfg, model.to(device), samples, device, rank, world, timing)
    image_rows, skipped, pair_rows, skipped_pairs = [], [], [], []
    if "fgsm" in tests or "occlusion" in tests:
        image_rows, skipped = _image_pass(run, selected, tests, eps, hole_px)
    pairs = np.zeros((0, 2), dtype=np.int64)
    if "inbetween" in tests:  # seeded pairs of images of different classes, drawn identically on every rank
        pos = draw_pairs([samples[i].label for i in selected], int(cfg.pairs), [int(cfg.seed), 1])
        pairs = np.asarray(selected, dtype=np.int64)[pos]
        pair_rows, skipped_pairs = _pair_pass(run, pairs, ratios, cut_px)

    # every rank ends with all rows, in dataset / pair order
    image_rows, skipped, pair_rows, skipped_pairs = (
        gather_rows(x, world) for x in (image_rows, skipped, pair_rows, skipped_pairs)
    )
    if ("fgsm" in tests or "occlusion" in tests) and not image_rows:
        raise DatasetError(
            f"no image of the {cfg.dataset} {data.split!r} split under {data.data_root} could be read "
            f"({len(skipped)} skipped as unreadable); nothing to evaluate"
        )
    if "inbetween" in tests and not pair_rows:
        raise DatasetError(f"no pair of images could be read ({len(skipped_pairs)} pairs skipped as unreadable)")

    timing["total_s"] = time.perf_counter() - t_start
    summary = summarize(image_rows, pair_rows, pairs, samples, tests, eps, cfg, hole_px, cut_px, ratios, size)
    rows = per_image_rows(image_rows, samples, data.class_names, eps)
    record = make_record(
        "robustness",
        checkpoint_info(loaded.path, loaded.sha256, loaded.arch, loaded.meta.get("method")),
        cfg.dataset,
        data.split,
        summary["metrics"],
        arch=loaded.arch,
        checkpoint_format=loaded.source_format,
        data_root=str(data.data_root),
        data=data_identity(
            cfg.dataset,
            data.split,
            data.data_root,
            [samples[r["index"]].image_id for r in image_rows]
            + [f"pair/{samples[a].image_id}/{samples[b].image_id}" for a, b in pairs],
        ),
        tests=tests,
        num_images=len(image_rows),
        num_images_selected=len(selected),
        num_images_in_split=len(samples),
        num_pairs=len(pair_rows),
        skipped_unreadable={"count": len(skipped), "images": skipped},
        skipped_pairs={"count": len(skipped_pairs), "pairs": skipped_pairs},
        protocol=protocol_fields(cfg, norm, form),
        normalization_source=norm.source,
        model_form=form,
        curves=summary["curves"],
        config=cfg.record_config(),
        world_size=world,
        timing=timing,
    )

    files: dict[str, Path] = {}
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        files["results"] = write_record(out_dir, record)
        if rows:
            files["per_image"] = out_dir / PER_IMAGE_CSV
            atomic_write_text(files["per_image"], rows_csv(rows, eps))
        files["predictions"] = out_dir / "predictions.npz"
        atomic_savez(files["predictions"], **summary["arrays"])
        files["curves"] = out_dir / "curves.png"
        plot_run_curves(
            summary["curves"],
            files["curves"],
            title=f"{Path(str(cfg.backbone)).name} on {cfg.dataset} {data.split} ({loaded.arch}, {size} px)",
            clean_top1=summary["metrics"].get("clean_top1"),
        )
        logger.info(
            "robustness %s: %s -> %s",
            cfg.dataset,
            ", ".join(f"{k} {v:.2f}" for k, v in summary["metrics"].items()),
            out_dir,
        )
    if world > 1:
        dist.barrier()
    return EvalResult(record=record, rows=rows, out_dir=out_dir, files=files)


def protocol_fields(cfg: RobustnessConfig, norm: Normalization, form: dict[str, Any]) -> dict[str, Any]:
    """The record's protocol fields (results.protocol_block adds the CPU pin): every choice that changes a number
    of this record; two records that differ in one are never one report cell."""
    return {
        "image_size": int(cfg.image_size),
        "resize_crop_fraction": CROP_FRACTION,
        **norm.protocol(),
        "fgsm_space": cfg.fgsm_space,
        "fgsm_clip": "[0, 1]" if cfg.fgsm_space == "pixels" else None,
        "fgsm_target": "true_label",
        "occlusion_fill": cfg.occlusion_fill,
        "inbetween_lambda": "share_of_first_image",
        "inbetween_pairs": "different_classes_with_replacement",
        "inbetween_dominant_at_half": "either",
        # the model's form changes every number; where it was read from (meta / command line) does not
        **{k: form[k] for k in ("wsol_form", "large_feature_map") if k in form},
    }


def summarize(
    image_rows: list[dict],
    pair_rows: list[dict],
    pairs: np.ndarray,
    samples: Sequence,
    tests: list[str],
    eps: list[float],
    cfg: RobustnessConfig,
    hole_px: list[int],
    cut_px: list[int],
    ratios: list[float],
    size: int,
) -> dict[str, Any]:
    """Metrics, curves and the prediction arrays (predictions.npz) from the per-image and per-pair rows."""
    metrics: dict[str, float] = {}
    curves: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    if image_rows:
        labels = np.array([r["label"] for r in image_rows], dtype=np.int64)
        clean = np.array([r["clean_pred"] for r in image_rows], dtype=np.int64)
        arrays.update(
            indices=np.array([r["index"] for r in image_rows], dtype=np.int64), labels=labels, clean_pred=clean
        )
        metrics["clean_top1"] = top1_accuracy(clean, labels)[0]
        if "fgsm" in tests:
            adv = np.array([r["fgsm_pred"] for r in image_rows], dtype=np.int64).reshape(len(labels), len(eps))
            acc = top1_accuracy(adv, labels)
            for e, a in zip(eps, acc):
                metrics[f"fgsm_top1_{eps_key(e)}"] = a
            curves["fgsm"] = {"eps": eps, "top1": acc}
            arrays.update(eps=np.asarray(eps, dtype=np.float64), fgsm_pred=adv)
        if "occlusion" in tests:
            occ = {
                m: np.array([r[f"{m}_pred"] for r in image_rows], dtype=np.int64).reshape(len(labels), -1)
                for m in ("center", "boundary")
            }
            curves["occlusion"] = {
                "hole_sizes": [int(s) for s in cfg.hole_sizes],
                "hole_sizes_px": hole_px,
                "center_top1_err": top1_error(occ["center"], labels),
                "boundary_top1_err": top1_error(occ["boundary"], labels),
            }
            arrays.update(
                hole_sizes=np.asarray(cfg.hole_sizes, dtype=np.int64),
                occlusion_center_pred=occ["center"],
                occlusion_boundary_pred=occ["boundary"],
            )
    if pair_rows:
        kept = np.array([r["index"] for r in pair_rows], dtype=np.int64)
        pa, pb = pairs[kept, 0], pairs[kept, 1]
        la = np.array([samples[i].label for i in pa], dtype=np.int64)
        lb = np.array([samples[i].label for i in pb], dtype=np.int64)
        mix = np.array([r["mixup_pred"] for r in pair_rows], dtype=np.int64).reshape(len(kept), -1)
        cut = np.array([r["cutmix_pred"] for r in pair_rows], dtype=np.int64).reshape(len(kept), -1)
        cut_ratios = [cutmix_ratio(s, size) for s in cut_px]
        curves["inbetween"] = {
            "num_pairs": len(kept),
            "lambda": "share of the first image x_A (Mixup: lam a + (1 - lam) b; CutMix: 1 - s^2 / S^2)",
            "mixup": {"ratios": ratios, **hit_rates(mix, la, lb, ratios)},
            "cutmix": {
                "sides": [int(s) for s in cfg.cutmix_sides],
                "sides_px": cut_px,
                "ratios": cut_ratios,
                **hit_rates(cut, la, lb, cut_ratios),
            },
        }
        arrays.update(
            pairs=np.stack([pa, pb], axis=1),
            pair_labels=np.stack([la, lb], axis=1),
            mixup_ratios=np.asarray(ratios, dtype=np.float64),
            mixup_pred=mix,
            cutmix_sides=np.asarray(cfg.cutmix_sides, dtype=np.int64),
            cutmix_ratios=np.asarray(cut_ratios, dtype=np.float64),  # lambda, the share of x_A
            cutmix_pred=cut,
        )
    return {"metrics": metrics, "curves": curves, "arrays": arrays}


CSV_HEAD = ("index", "image_id", "label", "class_name", "clean_pred", "clean_correct", "clean_confidence")


def per_image_rows(
    image_rows: list[dict], samples: Sequence, names: list[str] | None, eps: list[float]
) -> list[dict[str, Any]]:
    """One row per evaluated image: the clean prediction and, with FGSM, the prediction after each eps."""
    rows = []
    for r in image_rows:
        s = samples[r["index"]]
        label = r["label"]
        row = {
            "index": r["index"],
            "image_id": s.image_id,
            "label": label,
            "class_name": names[label] if names and label < len(names) else "",
            "clean_pred": r["clean_pred"],
            "clean_correct": int(r["clean_pred"] == label),
            "clean_confidence": r["clean_confidence"],
        }
        for e, p in zip(eps, r.get("fgsm_pred", [])):
            row[f"fgsm_pred_{eps_key(e)}"] = p
            row[f"fgsm_correct_{eps_key(e)}"] = int(p == label)
        rows.append(row)
    return rows


def rows_csv(rows: list[dict[str, Any]], eps: list[float]) -> str:
    """per_image.csv: CSV_HEAD, then fgsm_pred_eps<e>, fgsm_correct_eps<e> per eps (when FGSM ran)."""
    cols = list(CSV_HEAD)
    if rows and any(k.startswith("fgsm_pred_") for k in rows[0]):
        for e in eps:
            cols += [f"fgsm_pred_{eps_key(e)}", f"fgsm_correct_{eps_key(e)}"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in cols})
    return buf.getvalue()
