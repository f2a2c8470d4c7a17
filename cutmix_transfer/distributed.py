"""Distributed set-up: the trainers' launcher (classification, detection, captioning) and the torchrun helpers
of the evaluation tools (one process per rank, gloo on CPU, nccl on GPU).

On GPU machines mmengine's own launcher does everything. Without a visible GPU (CPU tests, CPU clusters)
two things in mmengine 0.10.7 break: `init_dist('pytorch')` calls `torch.cuda.set_device` unconditionally,
and the Runner wraps the model in MMDistributedDataParallel with device_ids=[LOCAL_RANK], which DDP rejects for
CPU modules. `prepare_launcher` initialises a gloo process group first (the Runner then skips init_dist) and
selects `CPUDistributedDataParallel`, which passes device_ids=None for a CPU module.

The evaluation tools shard their images `rank::world` under torchrun without mmengine: `setup_torchrun` joins
(or starts) the process group, `all_reduce_counts` sums integer counts exactly, `all_gather_objects` collects
per-rank lists and `gather_rows` per-rank rows in dataset order, so that the merged result equals the single-process
run.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

from .errors import ConfigError

logger = logging.getLogger(__name__)
Launcher = Literal["none", "pytorch", "slurm", "mpi"]  # mmengine's launchers (the trainers' --launcher)
LAUNCHERS: tuple[str, ...] = get_args(Launcher)


@MODEL_WRAPPERS.register_module(name="CPUDistributedDataParallel")
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """MMDistributedDataParallel that drops device_ids for a module whose parameters live on the CPU."""

    def __init__(self, module: torch.nn.Module, detect_anomalous_params: bool = False, **kwargs: Any) -> None:
        param = next(module.parameters(), None)
        if param is not None and param.device.type == "cpu":
            kwargs["device_ids"] = None
            kwargs.pop("output_device", None)
        super().__init__(module=module, detect_anomalous_params=detect_anomalous_params, **kwargs)


def prepare_launcher(cfg: Any, launcher: Launcher) -> None:
    """Set cfg.launcher; for 'pytorch' without a GPU, start gloo from torchrun's env and use the CPU DDP wrapper.

    `cfg` is an mmengine Config (modified in place). No-op for launcher 'none' and on GPU machines.
    """
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher {launcher!r} is unknown: choose one of {', '.join(LAUNCHERS)}")
    cfg.launcher = launcher
    if launcher == "none" or torch.cuda.is_available():
        return
    if launcher != "pytorch":
        raise ConfigError(
            f"--launcher {launcher} without a GPU is not supported; use torchrun with "
            f"--launcher pytorch (gloo backend) or run on a GPU node"
        )
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(
            f"--launcher pytorch needs torchrun's environment ({', '.join(missing)} unset); start "
            f"it with tools/dist_train.sh or torchrun --nproc_per_node N"
        )
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
        logger.info(
            "no GPU visible: initialised the gloo process group (rank %d of %d)", dist.get_rank(), dist.get_world_size()
        )
    wrapper = dict(cfg.get("model_wrapper_cfg") or {})
    if wrapper.get("type", "MMDistributedDataParallel") == "MMDistributedDataParallel":
        wrapper["type"] = "CPUDistributedDataParallel"
    cfg.model_wrapper_cfg = wrapper
    env = dict(cfg.get("env_cfg") or {})
    env.setdefault("dist_cfg", {})["backend"] = "gloo"
    cfg.env_cfg = env


class TorchrunRank(NamedTuple):
    """Where this process stands under torchrun (rank 0 of 1 without it)."""

    rank: int
    world_size: int
    created_group: bool  # this call started the process group: the caller destroys it when done
    device: torch.device  # cuda:LOCAL_RANK on a GPU run, else the device passed in


def setup_torchrun(device: torch.device) -> TorchrunRank:
    """Join torchrun's process group when WORLD_SIZE > 1 (nccl on cuda, gloo on cpu); pin cuda ranks to LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return TorchrunRank(0, 1, False, device)
    created = False
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        created = True
    return TorchrunRank(dist.get_rank(), dist.get_world_size(), created, device)


def all_reduce_counts(state: dict[str, np.ndarray], device: torch.device) -> dict[str, np.ndarray]:
    """Sum each int64 count array of `state` over all ranks (exact; keys in sorted order on every rank)."""
    out = {}
    for k in sorted(state):
        t = torch.from_numpy(np.ascontiguousarray(state[k], dtype=np.int64)).to(device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        out[k] = t.cpu().numpy()
    return out


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj` (picklable), in rank order, on every rank."""
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, obj)
    return parts


def gather_rows(rows: list[dict[str, Any]], world: int) -> list[dict[str, Any]]:
    """Every rank's rows (dicts with the sample's 'index': per-image rows, skipped images), in dataset order (a no-op
    in one process)."""
    if world <= 1:
        return rows
    rows = [r for part in all_gather_objects(rows) for r in part]
    rows.sort(key=lambda r: r["index"])
    return rows
