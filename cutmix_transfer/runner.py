"""The one way the trainers (classification, detection, captioning) set up mmengine's Runner: config loading with
one-line errors, atomic checkpoints with the project's meta, seed / resume / launcher options, the last checkpoint.

Checkpoint hooks: record how a checkpoint was pretrained, and write checkpoints so that a kill cannot corrupt them.

mmengine 0.10.7's CheckpointHook (a) deletes the oldest kept checkpoint *before* writing the new one, (b) writes
the checkpoint with open('wb') in place and (c) rewrites `last_checkpoint` with open('w'). A kill -9 during (b)
with max_keep_ckpts=1 leaves no complete checkpoint; during (c) an empty `last_checkpoint`, so `--resume`
silently starts from scratch. `AtomicCheckpointHook` writes to a temporary file, renames it into place, updates
`last_checkpoint` atomically, and only then deletes outdated checkpoints.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
from collections import deque
from pathlib import Path
from typing import Any, Sequence

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, RUNNERS
from mmengine.runner import Runner

from .checkpoints import PROJECT_META_KEY
from .distributed import Launcher, prepare_launcher
from .errors import ConfigError
from .io import atomic_write_text

logger = logging.getLogger(__name__)

# Known mmengine notes, matched by message (nothing else is hidden): mmengine's own hooks create a FileClient
# ('disk': a HardDiskBackend) on every run and log both deprecation notes through its MMLogger, not `warnings`.
MMENGINE_NOTES = ('"FileClient" will be deprecated in future', '"HardDiskBackend" is the alias of "LocalBackend"')


class MMEngineNoteFilter(logging.Filter):
    """Drops the records of an mmengine logger whose message starts with one of MMENGINE_NOTES."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(MMENGINE_NOTES)

    @classmethod
    def install(cls, mm_logger: logging.Logger) -> None:
        """Add the filter to `mm_logger` (an MMLogger: each is its own logger, not a child of one) once."""
        if not any(isinstance(f, cls) for f in mm_logger.filters):
            mm_logger.addFilter(cls())


@HOOKS.register_module(name="CheckpointMetaHook")
class CheckpointMetaHook(Hook):
    """Puts the model's `checkpoint_meta()` (arch, method, num_classes, wsol, ...) into meta[PROJECT_META_KEY]."""

    priority = "VERY_LOW"

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if hasattr(model, "checkpoint_meta"):
            checkpoint.setdefault("meta", {})[PROJECT_META_KEY] = model.checkpoint_meta()


@HOOKS.register_module(name="AtomicCheckpointHook")
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook, but a kill at any moment leaves `last_checkpoint` naming a complete file."""

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not isinstance(self.file_backend, LocalBackend):  # remote storage: no rename, keep mmengine's behaviour
            return super()._save_checkpoint_with_step(runner, step, meta)
        kept, outdated = list(self.keep_ckpt_ids), None
        if self.max_keep_ckpts > 0 and not (kept and kept[-1] == step):
            if len(kept) == self.max_keep_ckpts:
                outdated = kept.pop(0)
            kept.append(step)
        if self.max_keep_ckpts > 0:  # stored in the checkpoint's message hub, for resume
            runner.message_hub.update_info("keep_ckpt_ids", kept)

        ckpt_filename = self.filename_tmpl.format(step)
        ckpt_path = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info("last_ckpt", ckpt_path)
        tmp_filename = f".{ckpt_filename}.tmp"
        try:
            runner.save_checkpoint(self.out_dir, tmp_filename, self.file_client_args,
                                   save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
                                   meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        except BaseException:  # the complete files are untouched: drop the partial one, undo the bookkeeping
            partial = osp.join(self.out_dir, tmp_filename)
            if osp.isfile(partial):
                os.remove(partial)
            if self.max_keep_ckpts > 0:
                runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))
            if self.last_ckpt is not None:
                runner.message_hub.update_info("last_ckpt", self.last_ckpt)
            raise
        self.keep_ckpt_ids = deque(kept)
        self.last_ckpt = ckpt_path
        if not is_main_process():
            return
        tmp_path = osp.join(self.out_dir, tmp_filename)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, self.last_ckpt)
        atomic_write_text(osp.join(runner.work_dir, "last_checkpoint"), self.last_ckpt)
        if outdated is not None and outdated != step:
            old = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isfile(old):
                os.remove(old)


def load_config(config: str | os.PathLike, cfg_options: dict | None = None, where: str = "configs/",
                required: Sequence[str] = ()) -> Config:
    """mmengine Config from `config` with `cfg_options` (dotted keys) merged; a ConfigError naming the file (and
    `where` the project's configs of that kind live) when it is missing, cannot be parsed or lacks a `required`
    top-level key. The config's custom_imports register the project's modules it names."""
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"config {path} does not exist; start from a config in {where}")
    try:
        cfg = Config.fromfile(str(path))
    except Exception as e:  # mmengine raises many types for a bad config file; all are the user's to fix
        raise ConfigError(f"cannot load config {path}: {type(e).__name__}: {e}") from e
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    for key in required:
        if key not in cfg:
            raise ConfigError(f"config {path} has no `{key}`: start from a config in {where}")
    return cfg


def build_runner(cfg: Config) -> Runner:
    """mmengine's Runner from `cfg` (or the registered runner named by `runner_type`), as mmdet's tools do."""
    runner = RUNNERS.build(cfg) if "runner_type" in cfg else Runner.from_cfg(cfg)
    MMEngineNoteFilter.install(runner.logger)
    return runner


def ensure_checkpoint_hooks(cfg: Any, meta_hook: str | None = "CheckpointMetaHook") -> None:
    """Atomic checkpoints (and the `meta_hook` that writes the project's meta) in every run, whatever the config
    says; a config's own CheckpointHook subclass is left alone."""
    hooks = dict(cfg.get("default_hooks") or {})
    ckpt = dict(hooks.get("checkpoint") or dict(interval=1))
    if ckpt.get("type", "CheckpointHook") in ("CheckpointHook", "AtomicCheckpointHook"):
        ckpt["type"] = "AtomicCheckpointHook"
    hooks["checkpoint"] = ckpt
    cfg.default_hooks = hooks
    custom = list(cfg.get("custom_hooks") or [])
    if meta_hook is not None and not any(h.get("type") == meta_hook for h in custom):
        custom.append(dict(type=meta_hook))
    cfg.custom_hooks = custom


def apply_run_options(cfg: Any, config: str | os.PathLike | None, work_dir: str | os.PathLike | None = None,
                      resume: bool | str | None = False, seed: int | None = None, launcher: Launcher = "none") -> None:
    """work_dir (default work_dirs/<config name>), resume (True/'auto': the work dir's last checkpoint, a path:
    that file), seed (overrides the config's randomness seed) and launcher (gloo DDP when there is no GPU)."""
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    elif not cfg.get("work_dir"):
        cfg.work_dir = osp.join("work_dirs", Path(config or cfg.filename or "run").stem)
    if resume:
        cfg.resume = True
        cfg.load_from = None if resume in (True, "auto") else str(resume)
    if seed is not None:
        cfg.randomness = dict(cfg.get("randomness") or {}, seed=int(seed))
    prepare_launcher(cfg, launcher)


def last_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """The checkpoint named in `<work_dir>/last_checkpoint` when that file exists (None otherwise)."""
    marker = osp.join(str(work_dir), "last_checkpoint")
    if not osp.isfile(marker):
        return None
    path = Path(marker).read_text().strip()
    return path if path and osp.isfile(path) else None
