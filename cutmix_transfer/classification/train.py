"""Run a classification pretraining config on mmengine's Runner and record its validation error."""

from __future__ import annotations

import logging
import os
from typing import Any

from mmengine.dist import is_main_process

from ..distributed import Launcher
from ..io import sha256_file
from ..results import checkpoint_info, data_identity, make_record, write_record
from ..runner import (
    apply_run_options,
    build_runner,
    ensure_checkpoint_hooks,
    last_checkpoint,
    load_config,
    train_and_validate,
)

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
    """Train the config's CAMClassifier; -> {'work_dir', 'checkpoint', 'metrics', 'record'}.

    `resume=True` continues from `work_dir/last_checkpoint` (a fresh start when there is none). `seed` overrides
    the config's randomness seed; `trust_checkpoint` lets `model.pretrained` need full unpickling. After
    training the main process writes `work_dir/results.json` (kind 'classification': top1_err / top5_err of
    the last validation, linked to the last checkpoint's sha256).
    """
    cfg = load_config(config, cfg_options, where=CONFIGS_HINT)
    apply_run_options(cfg, config, work_dir, resume=resume, seed=seed, launcher=launcher)
    if trust_checkpoint:  # the config's model.pretrained file may need full unpickling
        cfg.model.trust_pretrained = True
    ensure_checkpoint_hooks(cfg)
    runner = build_runner(cfg)  # the package's import registered its datasets, model, metric and hooks
    train_and_validate(runner)  # also the final validation a run killed during it still owes

    scalars = runner.message_hub.log_scalars
    metrics = {
        k[len("val/") :]: float(v.current()) for k, v in scalars.items() if k in ("val/top1_err", "val/top5_err")
    }
    ckpt = last_checkpoint(cfg.work_dir)
    out: dict[str, Any] = {"work_dir": cfg.work_dir, "checkpoint": ckpt, "metrics": metrics, "record": None}
    if is_main_process() and ckpt is not None and metrics:
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        meta = model.checkpoint_meta()
        val = cfg.val_dataloader.dataset
        record = make_record(
            "classification",
            checkpoint_info(ckpt, sha256_file(ckpt), meta["arch"], meta["method"]),
            dataset=f"{val.get('type')}:{val.get('root')}",
            split=str(val.get("split")),
            metrics=metrics,
            config=str(config),
            epochs=runner.epoch,
            iters=runner.iter,
            data=data_identity(
                f"{val.get('type')}:{val.get('root')}",
                str(val.get("split")),
                val.get("root"),
                _image_ids(runner.val_dataloader.dataset),
            ),
        )
        out["record"] = str(write_record(cfg.work_dir, record))
        logger.info("validation %s; checkpoint %s; record %s", metrics, ckpt, out["record"])
    return out


def _image_ids(dataset: Any) -> list[str]:
    """The validation images' names for the record's data identity: file paths where the dataset has them, else
    indices (CIFAR's arrays)."""
    if hasattr(dataset, "items"):
        return [str(p) for p, _ in dataset.items]
    if hasattr(dataset, "paths"):
        return [str(p) for p in dataset.paths]
    return [str(i) for i in range(len(dataset))]
