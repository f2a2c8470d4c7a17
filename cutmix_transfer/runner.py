"""The one way the trainers (classification, detection, captioning) set up mmengine's Runner: config loading with
one-line errors, atomic checkpoints with the project's meta, seed / resume / launcher options, the last checkpoint.

Checkpoint hooks: record how a checkpoint was pretrained, and write checkpoints so that a kill cannot corrupt them.

mmengine 0.10.7's CheckpointHook (a) deletes the oldest kept checkpoint *before* writing the new one, (b) writes
the checkpoint with open('wb') in place and (c) rewrites `last_checkpoint` with open('w'). A kill -9 during (b)
with max_keep_ckpts=1 leaves no complete checkpoint; during (c) an empty `last_checkpoint`, so `--resume`
silently starts from scratch. `AtomicCheckpointHook` writes to a temporary file, renames it into place, updates
`last_checkpoint` atomically, and only then deletes outdated checkpoints. Its temporary file is named after its
writer (`.epoch_N.pth.<host>@<pid>.tmp`, worklock.temp_name): the clean-up at start removes only those whose writer
is gone, and a failed write removes only its own.

One run per work dir (worklock): `apply_run_options` takes the work dir's lock in the single process or rank 0
before anything is written there, and every rank learns the outcome first, so that a refused run writes nothing.
A rank whose launcher died stops before it renames, deletes or records anything (distributed.stop_if_launcher_gone).

Exact resume (docs/reproducibility.md): mmengine saves no random state, so a resumed run would replay the lost
iterations with other random numbers. Instead of saving states, every stream is derived from (seed, ...):
`ReproducibleRandomnessHook` reseeds the global python/numpy/torch generators and each `BatchAugment` before every
training iteration from (seed, iteration, rank), and the training dataset is wrapped (`SeededDataset` +
`SeededSampler`) so that each sample's transforms run on generators seeded from (seed, epoch, position in the
epoch), whichever worker process loads it. A run resumed from any checkpoint then draws the same numbers as one
that was never interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import os.path as osp
import random
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler
from mmengine.dist import get_rank, is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import MMDistributedDataParallel, is_model_wrapper
from mmengine.registry import DATA_SAMPLERS, DATASETS, HOOKS, MODEL_WRAPPERS, RUNNERS
from mmengine.runner import Runner
from torch.utils.data import Dataset, get_worker_info

from .augment import BatchAugment
from .checkpoints import PROJECT_META_KEY
from .cli import MMEngineNoteFilter
from .distributed import Launcher, prepare_launcher, stop_if_launcher_gone
from .errors import ConfigError
from .io import atomic_write_text
from .normalization import dataset_normalization
from .runtime import seed_global_rngs
from .worklock import WorkDirBusyError, acquire_work_dir, remove_orphaned_temps, temp_name

logger = logging.getLogger(__name__)


@MODEL_WRAPPERS.register_module(name="CPUDistributedDataParallel")
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """MMDistributedDataParallel that drops device_ids for a module whose parameters live on the CPU."""

    def __init__(self, module: torch.nn.Module, detect_anomalous_params: bool = False, **kwargs: Any) -> None:
        param = next(module.parameters(), None)
        if param is not None and param.device.type == "cpu":
            kwargs["device_ids"] = None
            kwargs.pop("output_device", None)
        super().__init__(module=module, detect_anomalous_params=detect_anomalous_params, **kwargs)


@HOOKS.register_module(name="CheckpointMetaHook")
class CheckpointMetaHook(Hook):
    """Puts the model's `checkpoint_meta()` (arch, method, num_classes, wsol, ...) into meta[PROJECT_META_KEY]."""

    priority = "VERY_LOW"

    def before_train(self, runner) -> None:
        """Note the training transform's mean / std: the meta records them so evaluators normalise as trained."""
        self.normalization = dataset_normalization(getattr(runner.train_dataloader, "dataset", None))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if hasattr(model, "checkpoint_meta"):
            meta = {**getattr(self, "normalization", {}), **model.checkpoint_meta()}
            checkpoint.setdefault("meta", {})[PROJECT_META_KEY] = meta


@HOOKS.register_module(name="AtomicCheckpointHook")
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook, but a kill at any moment leaves `last_checkpoint` naming a complete file."""

    def before_train(self, runner) -> None:
        """mmengine's set-up, then drop the partial temporary files that a killed process left (their writer, named
        in the file name, is gone; a live writer's file is left alone)."""
        super().before_train(runner)
        if is_main_process() and isinstance(self.file_backend, LocalBackend):
            for folder in {osp.realpath(self.out_dir), osp.realpath(runner.work_dir)}:
                remove_orphaned_temps(folder)
        self._pending: tuple[int, dict] | None = None

    # An epoch's checkpoint is written after the validation that follows the epoch (mmengine writes it before):
    # a run killed during that validation then resumes from the previous checkpoint and redoes the epoch and its
    # validation, so the resumed run logs every validation an uninterrupted one logs, and the checkpoint's
    # message hub holds the same history. An epoch that no validation follows is saved before the next starts.
    def _save_checkpoint(self, runner) -> None:
        if not self.by_epoch or runner.val_loop is None:
            return super()._save_checkpoint(runner)
        self._flush_pending(runner)
        self._pending = (runner.epoch + 1, dict(epoch=runner.epoch + 1, iter=runner.iter))

    def _flush_pending(self, runner) -> None:
        pending, self._pending = getattr(self, "_pending", None), None
        if pending is not None:  # mmengine's after_train_epoch logged "Saving checkpoint at N epochs" already
            self._save_checkpoint_with_step(runner, pending[0], meta=pending[1])

    def after_val_epoch(self, runner, metrics) -> None:
        self._flush_pending(runner)
        super().after_val_epoch(runner, metrics)

    def before_train_epoch(self, runner) -> None:
        self._flush_pending(runner)

    def after_train(self, runner) -> None:
        self._flush_pending(runner)
        super().after_train(runner)

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
        tmp_filename = temp_name(ckpt_filename)  # only rank 0 writes it (Runner.save_checkpoint is master_only)
        try:
            runner.save_checkpoint(
                self.out_dir,
                tmp_filename,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args,
            )
        except BaseException:  # the complete files are untouched: drop the partial one (ours), undo the bookkeeping
            partial = osp.join(self.out_dir, tmp_filename)
            if is_main_process() and osp.isfile(partial):
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
        stop_if_launcher_gone(f"renaming {tmp_path}")
        os.replace(tmp_path, self.last_ckpt)
        stop_if_launcher_gone(f"updating {runner.work_dir}/last_checkpoint")
        atomic_write_text(osp.join(runner.work_dir, "last_checkpoint"), self.last_ckpt)
        if outdated is not None and outdated != step:
            old = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(outdated))
            if osp.isfile(old):
                stop_if_launcher_gone(f"deleting {old}")
                os.remove(old)


# ------------------------------------------------------------------------------------ exact resume: seed streams
# Stream tags keep the seeds of the different uses apart (any fixed distinct integers).
GLOBAL_STREAM, AUGMENT_STREAM, SAMPLE_STREAM = 1, 2, 3


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (seed, stream, epoch or iteration, rank, ...), through numpy's SeedSequence."""
    state = np.random.SeedSequence([int(k) % 2**63 for k in keys]).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1))


@contextlib.contextmanager
def preserved_global_rngs() -> Iterator[None]:
    """Restore the python, numpy and torch CPU generators on exit (CUDA is not touched by data transforms)."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


class SeededIndex(int):
    """A dataset index that carries the seed its sample's random transforms draw from."""

    seed: int

    def __new__(cls, index: int, seed: int) -> SeededIndex:
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self) -> tuple:
        return SeededIndex, (int(self), self.seed)


@DATA_SAMPLERS.register_module(name="SeededSampler")
class SeededSampler(DefaultSampler):
    """mmengine's DefaultSampler (same order) whose indices carry a seed from (seed, epoch, position in the epoch).

    The position counts over all ranks, so the seed does not depend on which rank or worker loads the sample.
    """

    def __iter__(self) -> Iterator[int]:
        for k, index in enumerate(super().__iter__()):
            yield SeededIndex(index, derive_seed(self.seed, SAMPLE_STREAM, self.epoch, self.rank + k * self.world_size))


@DATASETS.register_module(name="SeededDataset")
class SeededDataset(Dataset):
    """Wraps a dataset: an index from `SeededSampler` seeds the global generators before its sample is loaded.

    Inside a worker process the generators are left seeded (the worker's own state does not matter); in the main
    process (num_workers=0) they are restored afterwards. Every other attribute is the wrapped dataset's.
    """

    def __init__(self, dataset: dict | Dataset) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "dataset":  # unpickling / copying: no wrapped dataset yet
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> Any:
        seed = getattr(index, "seed", None)
        if seed is None:
            return self.dataset[index]
        if get_worker_info() is not None:
            seed_global_rngs(seed, cuda=False)
            return self.dataset[int(index)]
        with preserved_global_rngs():
            seed_global_rngs(seed, cuda=False)
            return self.dataset[int(index)]


def batch_augments(model: Any) -> list[BatchAugment]:
    """The BatchAugment of the model's data preprocessor (the classifier's), as a list (empty when none)."""
    model = model.module if is_model_wrapper(model) else model
    augment = getattr(getattr(model, "data_preprocessor", None), "augment", None)
    return [augment] if isinstance(augment, BatchAugment) else []


@HOOKS.register_module(name="ReproducibleRandomnessHook")
class ReproducibleRandomnessHook(Hook):
    """Before every training iteration, reseed the global generators and the batch augment from (seed, iter, rank).

    Also records the iteration of the last validation, so that `train_and_validate` can tell whether a resumed
    run still owes the final validation.
    """

    priority = "VERY_HIGH"

    def __init__(self) -> None:
        self.validated_at_iter: int | None = None

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        rank = get_rank()
        seed_global_rngs(derive_seed(runner.seed, GLOBAL_STREAM, runner.iter, rank))
        for augment in batch_augments(runner.model):
            augment.reseed(derive_seed(runner.seed, AUGMENT_STREAM, runner.iter, rank))

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        self.validated_at_iter = runner.iter


def make_training_reproducible(cfg: Any) -> None:
    """Add ReproducibleRandomnessHook and wrap the training dataset/sampler in SeededDataset/SeededSampler."""
    custom = list(cfg.get("custom_hooks") or [])
    if not any(h.get("type") == "ReproducibleRandomnessHook" for h in custom):
        custom.append(dict(type="ReproducibleRandomnessHook"))
    cfg.custom_hooks = custom
    loader = cfg.get("train_dataloader")
    if not isinstance(loader, dict) or not isinstance(loader.get("dataset"), dict):
        return
    if loader["dataset"].get("type") != "SeededDataset":
        loader["dataset"] = dict(type="SeededDataset", dataset=loader["dataset"])
    sampler = dict(loader.get("sampler") or dict(type="DefaultSampler"))
    if sampler.get("type") in ("DefaultSampler", DefaultSampler):
        sampler["type"] = "SeededSampler"
    elif sampler.get("type") not in ("SeededSampler", SeededSampler):
        logger.warning(
            "train sampler %s is not mmengine's DefaultSampler: its samples are loaded without a "
            "per-sample seed, so a resumed run may transform them differently",
            sampler.get("type"),
        )
    loader["sampler"] = sampler


def train_and_validate(runner: Runner) -> None:
    """`runner.train()`, then the final validation when this process did not run it (a run resumed from its last
    checkpoint, killed during that validation, trains no further but still owes it). A loss that turns NaN/inf
    (mmengine's CheckInvalidLossHook asserts) becomes a ConfigError naming the run and the fix."""
    try:
        runner.train()
    except AssertionError as e:
        if "infinite or NaN" not in str(e):
            raise
        raise ConfigError(
            f"training diverged: the loss became NaN or infinite in epoch {runner.epoch + 1} (iteration "
            f"{runner.iter}) of the run in {runner.work_dir}; lower the learning rate or clip the gradients, e.g. "
            f"--cfg-options optim_wrapper.optimizer.lr=0.001 optim_wrapper.clip_grad.max_norm=10, and start it "
            f"again in a new --work-dir"
        ) from e
    loop = runner.train_loop
    hook = next((h for h in runner.hooks if isinstance(h, ReproducibleRandomnessHook)), None)
    if hook is None or runner.val_loop is None or hook.validated_at_iter == runner.iter:
        return
    if runner.epoch >= loop.max_epochs and runner.epoch >= getattr(loop, "val_begin", 1):
        logger.info("running the final validation of epoch %d (not run before this resume)", runner.epoch)
        runner.val_loop.run()
    stop_if_launcher_gone(f"recording the results in {runner.work_dir}")  # the trainers write them next


def load_config(
    config: str | os.PathLike, cfg_options: dict | None = None, where: str = "configs/", required: Sequence[str] = ()
) -> Config:
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
    """mmengine's Runner from `cfg` (or the registered runner named by `runner_type`), as mmdet's tools do; the
    training randomness derived from the seed (`make_training_reproducible`) so that --resume replays exactly."""
    make_training_reproducible(cfg)
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


def apply_run_options(
    cfg: Any,
    config: str | os.PathLike | None,
    work_dir: str | os.PathLike | None = None,
    resume: bool | str | None = False,
    seed: int | None = None,
    launcher: Launcher = "none",
) -> None:
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
    hold_work_dir(cfg.work_dir)


def hold_work_dir(work_dir: str | os.PathLike) -> None:
    """Take `work_dir`'s lock for this run (worklock): the single process or rank 0 takes it, and under a launcher
    every rank learns the outcome before any of them writes there; a WorkDirBusyError on every rank when another
    run holds it."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    error = None
    if not distributed or torch.distributed.get_rank() == 0:
        try:
            acquire_work_dir(work_dir)
        except WorkDirBusyError as e:
            error = str(e)
    if distributed and torch.distributed.get_world_size() > 1:
        outcome = [error]
        torch.distributed.broadcast_object_list(outcome, src=0)
        error = outcome[0]
    if error is not None:
        raise WorkDirBusyError(error)


def last_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """The checkpoint named in `<work_dir>/last_checkpoint` when that file exists (None otherwise)."""
    marker = osp.join(str(work_dir), "last_checkpoint")
    if not osp.isfile(marker):
        return None
    path = Path(marker).read_text().strip()
    return path if path and osp.isfile(path) else None


def train_run(cfg: Config, metric_names: Sequence[str]) -> tuple[Runner, str | None, dict[str, float]]:
    """A trainer's run of `cfg` (train_classifier, train_captioner): atomic checkpoints with the project's meta,
    build the Runner, train (`train_and_validate`); -> (runner, its last checkpoint, the last validation's
    `metric_names`, in the order the Runner logged them)."""
    ensure_checkpoint_hooks(cfg)
    runner = build_runner(cfg)  # the trainer package's import registered its datasets, model, metric and hooks
    train_and_validate(runner)  # also the final validation a run killed during it still owes
    metrics = {
        k[len("val/") :]: float(v.current())
        for k, v in runner.message_hub.log_scalars.items()
        if k.startswith("val/") and k[len("val/") :] in metric_names
    }
    return runner, last_checkpoint(cfg.work_dir), metrics
