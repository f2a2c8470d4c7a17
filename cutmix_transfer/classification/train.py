"""Run a classification pretraining config on mmengine's Runner and record its validation error."""
from __future__ import annotations

import logging
import os
from typing import Any

from mmengine.config import DictAction  # noqa: F401  (re-exported for tools/train_cls.py)
from mmengine.dist import is_main_process

from ..io import sha256_file
from ..runner import apply_run_options, ensure_checkpoint_hooks, last_checkpoint
from ..runner import load_config as _load_config

logger = logging.getLogger(__name__)


def load_config(config: str | os.PathLike, cfg_options: dict | None = None):
    """mmengine Config of a classification config with `cfg_options` merged (ConfigError when it cannot load)."""
    return _load_config(config, cfg_options, where="configs/cls/")


def train_classifier(config: str | os.PathLike, work_dir: str | None = None, cfg_options: dict | None = None,
                     resume: bool = False, seed: int | None = None, launcher: str = "none",
                     trust_checkpoint: bool = False) -> dict[str, Any]:
    """Train the config's CAMClassifier; -> {'work_dir', 'checkpoint', 'metrics', 'record'}.

    `resume=True` continues from `work_dir/last_checkpoint` (a fresh start when there is none). `seed` overrides
    the config's randomness seed; `trust_checkpoint` lets `model.pretrained` need full unpickling. After
    training the main process writes `work_dir/results.json` (kind 'classification': top1_err / top5_err of
    the last validation, linked to the last checkpoint's sha256).
    """
    import cutmix_transfer.classification  # noqa: F401  (registers the datasets, model, metric, hooks)
    from mmengine.runner import Runner

    from ..results import checkpoint_info, make_record, write_record

    cfg = load_config(config, cfg_options)
    apply_run_options(cfg, config, work_dir, resume=resume, seed=seed, launcher=launcher)
    if trust_checkpoint:  # the config's model.pretrained file may need full unpickling
        cfg.model.trust_pretrained = True
    ensure_checkpoint_hooks(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()

    scalars = runner.message_hub.log_scalars
    metrics = {k[len("val/"):]: float(v.current()) for k, v in scalars.items()
               if k in ("val/top1_err", "val/top5_err")}
    ckpt = last_checkpoint(cfg.work_dir)
    out: dict[str, Any] = {"work_dir": cfg.work_dir, "checkpoint": ckpt, "metrics": metrics, "record": None}
    if is_main_process() and ckpt is not None and metrics:
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        meta = model.checkpoint_meta()
        val = cfg.val_dataloader.dataset
        record = make_record("classification", checkpoint_info(ckpt, sha256_file(ckpt), meta["arch"], meta["method"]),
                             dataset=f"{val.get('type')}:{val.get('root')}", split=str(val.get("split")),
                             metrics=metrics, config=str(config), epochs=runner.epoch, iters=runner.iter)
        out["record"] = str(write_record(cfg.work_dir, record))
        logger.info("validation %s; checkpoint %s; record %s", metrics, ckpt, out["record"])
    return out
