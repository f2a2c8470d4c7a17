"""Checkpoint hooks: record how a checkpoint was pretrained, and write checkpoints so that a kill cannot corrupt them.

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

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..io import atomic_write_text

logger = logging.getLogger(__name__)


@HOOKS.register_module(name="CheckpointMetaHook")
class CheckpointMetaHook(Hook):
    """Puts the model's `checkpoint_meta()` (arch, method, num_classes, wsol, ...) into meta['cutmix_transfer']."""

    priority = "VERY_LOW"

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if hasattr(model, "checkpoint_meta"):
            checkpoint.setdefault("meta", {})["cutmix_transfer"] = model.checkpoint_meta()


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
