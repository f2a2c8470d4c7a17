"""Run a classification pretraining config on mmengine's Runner and record its validation error."""
from __future__ import annotations

import logging
import os
import os.path as osp
from pathlib import Path
from typing import Any

from mmengine.config import Config, DictAction  # noqa: F401  (DictAction re-exported for tools/train_cls.py)
from mmengine.dist import is_main_process

from ..errors import ConfigError
from ..io import sha256_file
from ..distributed import prepare_launcher

logger = logging.getLogger(__name__)
META_HOOK = "CheckpointMetaHook"


def load_config(config: str | os.PathLike, cfg_options: dict | None = None) -> Config:
    """mmengine Config from `config` with `cfg_options` (dotted keys) merged; ConfigError when it cannot load."""
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"config {path} does not exist; the classification configs live in configs/cls/")
    try:
        cfg = Config.fromfile(str(path))
    except Exception as e:  # mmengine raises many types for a bad config file; all are the user's to fix
        raise ConfigError(f"cannot load config {path}: {type(e).__name__}: {e}") from e
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _ensure_hooks(cfg: Config) -> None:
    """Atomic checkpoints and the cutmix_transfer meta in every run, whatever the config says."""
    hooks = cfg.get("default_hooks") or {}
    ckpt = dict(hooks.get("checkpoint") or dict(interval=1))
    if ckpt.get("type", "CheckpointHook") in ("CheckpointHook", "AtomicCheckpointHook"):
        ckpt["type"] = "AtomicCheckpointHook"
    hooks["checkpoint"] = ckpt
    cfg.default_hooks = hooks
    custom = list(cfg.get("custom_hooks") or [])
    if not any(h.get("type") == META_HOOK for h in custom):
        custom.append(dict(type=META_HOOK))
    cfg.custom_hooks = custom


def _last_checkpoint(work_dir: str) -> str | None:
    marker = osp.join(work_dir, "last_checkpoint")
    if not osp.isfile(marker):
        return None
    path = Path(marker).read_text().strip()
    return path if path and osp.isfile(path) else None


def train_classifier(config: str | os.PathLike, work_dir: str | None = None, cfg_options: dict | None = None,
                     resume: bool = False, seed: int | None = None, launcher: str = "none") -> dict[str, Any]:
    """Train the config's CAMClassifier; -> {'work_dir', 'checkpoint', 'metrics', 'record'}.

    `resume=True` continues from `work_dir/last_checkpoint` (a fresh start when there is none). `seed` overrides
    the config's randomness seed. After training the main process writes `work_dir/results.json`
    (kind 'classification': top1_err / top5_err of the last validation, linked to the last checkpoint's sha256).
    """
    import cutmix_transfer.classification  # noqa: F401  (registers the datasets, model, metric, hooks)
    from mmengine.runner import Runner

    from ..results import checkpoint_info, make_record, write_record

    cfg = load_config(config, cfg_options)
    cfg.work_dir = work_dir or cfg.get("work_dir") or osp.join("work_dirs", Path(config).stem)
    if resume:
        cfg.resume = True
        cfg.load_from = None
    if seed is not None:
        cfg.randomness = dict(cfg.get("randomness") or {}, seed=int(seed))
    _ensure_hooks(cfg)
    prepare_launcher(cfg, launcher)
    runner = Runner.from_cfg(cfg)
    runner.train()

    scalars = runner.message_hub.log_scalars
    metrics = {k[len("val/"):]: float(v.current()) for k, v in scalars.items()
               if k in ("val/top1_err", "val/top5_err")}
    ckpt = _last_checkpoint(cfg.work_dir)
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
