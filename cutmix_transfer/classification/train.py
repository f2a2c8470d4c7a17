"""Run a classification pretraining config on mmengine's Runner and record its validation error."""

from __future__ import annotations

import logging
import os
from typing import Any

from mmengine.dist import is_main_process

from ..clseval.identity import classification_protocol, preprocess_fields, reader_identity
from ..distributed import Launcher
from ..io import atomic_write_text, sha256_file
from ..normalization import transform_normalization
from ..results import PER_IMAGE_CSV, TRAIN_SEED, checkpoint_info, data_identity, make_record, write_record
from ..runner import apply_run_options, load_config, train_run
from .metric import TopKError, per_image_csv

logger = logging.getLogger(__name__)
CONFIGS_HINT = "configs/cls/"  # where a missing or broken classification config sends the user


def train_classifier(
    config: str | os.PathLike,
    work_dir: str | None = None,
    cfg_options: dict | None = None,
    resume: bool = False,
    seed: int | None = None,
    launcher: Launcher = "none",
    trust_checkpoint: bool = False,
) -> dict[str, Any]:
    """Train the config's CAMClassifier; -> {'work_dir', 'checkpoint', 'metrics', 'record', 'per_image'}.

    `resume=True` continues from `work_dir/last_checkpoint` (a fresh start when there is none). `seed` overrides
    the config's randomness seed; `trust_checkpoint` lets `model.pretrained` need full unpickling. After
    training the main process writes `work_dir/per_image.csv` (that validation's per-image predictions, for the
    report's intervals) and then `work_dir/results.json` (kind 'classification': top1_err / top5_err of the last
    validation, linked to the last checkpoint's sha256).
    """
    cfg = load_config(config, cfg_options, where=CONFIGS_HINT)
    apply_run_options(cfg, config, work_dir, resume=resume, seed=seed, launcher=launcher)
    if trust_checkpoint:  # the config's model.pretrained file may need full unpickling
        cfg.model.trust_pretrained = True
    runner, ckpt, metrics = train_run(cfg, ("top1_err", "top5_err"))
    out: dict[str, Any] = {
        "work_dir": cfg.work_dir,
        "checkpoint": ckpt,
        "metrics": metrics,
        "record": None,
        "per_image": None,
    }
    if is_main_process() and ckpt is not None and metrics:
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        meta = model.checkpoint_meta()
        val, reader = cfg.val_dataloader.dataset, runner.val_dataloader.dataset
        # test_cls's names, ids and protocol for the same images and inputs: one report cell with its records
        dataset, root, image_ids = reader_identity(reader, dict(val))
        split = str(val.get("split"))
        out["per_image"] = _write_per_image(runner, cfg.work_dir, image_ids)
        record = make_record(
            "classification",
            checkpoint_info(ckpt, sha256_file(ckpt), meta["arch"], meta["method"]),
            dataset=dataset,
            split=split,
            metrics=metrics,
            config=str(config),
            epochs=runner.epoch,
            iters=runner.iter,
            **{TRAIN_SEED: runner.seed},
            data=data_identity(dataset, split, root, image_ids),
            protocol=_protocol(val, reader, dataset),
            tool="train_cls",
        )
        out["record"] = str(write_record(cfg.work_dir, record))
        logger.info("validation %s; checkpoint %s; record %s", metrics, ckpt, out["record"])
    return out


def _write_per_image(runner: Any, work_dir: str, image_ids: list[str]) -> str | None:
    """Write the final validation's per-image rows (TopKError's, one per validation image) to
    `work_dir/per_image.csv`; -> its path, or None (and no stale file left) when the metric has no complete rows."""
    path = os.path.join(work_dir, PER_IMAGE_CSV)
    metric = next((m for m in runner.val_evaluator.metrics if isinstance(m, TopKError)), None)
    rows = metric.per_image if metric is not None else None
    if rows is None or [r["index"] for r in rows] != list(range(len(image_ids))):
        logger.warning("no per-image rows cover the %d validation images: %s not written", len(image_ids), path)
        if os.path.exists(path):
            os.remove(path)  # another run's rows would not match this record
        return None
    atomic_write_text(path, per_image_csv(rows, image_ids))
    return path


def _protocol(val: Any, reader: Any, dataset: str) -> dict[str, Any]:
    """The validation's protocol block fields as test_cls writes them (clseval.identity): the val transform's input
    and the statistics of its Normalize."""
    spec = dict(val.get("transform") or {})
    mean, std = transform_normalization(getattr(reader, "transform", None)) or ([], [])
    return classification_protocol(
        preprocess_fields(str(spec.get("preset")), int(spec.get("size", 0)), dataset), mean, std
    )
