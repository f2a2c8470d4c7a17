"""Distributed training set-up shared by the trainers (classification, detection, captioning).

On GPU machines mmengine's own launcher does everything. Without a visible GPU (CPU tests, CPU clusters)
two things in mmengine 0.10.7 break: `init_dist('pytorch')` calls `torch.cuda.set_device` unconditionally,
and the Runner wraps the model in MMDistributedDataParallel with device_ids=[LOCAL_RANK], which DDP rejects for
CPU modules. `prepare_launcher` initialises a gloo process group first (the Runner then skips init_dist) and
selects `CPUDistributedDataParallel`, which passes device_ids=None for a CPU module.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Literal

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

from .errors import ConfigError

logger = logging.getLogger(__name__)
Launcher = Literal["none", "pytorch", "slurm", "mpi"]
LAUNCHERS = ("none", "pytorch", "slurm", "mpi")


@MODEL_WRAPPERS.register_module(name="CPUDistributedDataParallel")
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """MMDistributedDataParallel that drops device_ids for a module whose parameters live on the CPU."""

    def __init__(self, module: torch.nn.Module, detect_anomalous_params: bool = False, **kwargs: Any) -> None:
        param = next(module.parameters(), None)
        if param is not None and param.device.type == "cpu":
            kwargs["device_ids"] = None
            kwargs.pop("output_device", None)
        super().__init__(module=module, detect_anomalous_params=detect_anomalous_params, **kwargs)


def prepare_launcher(cfg: Any, launcher: str) -> None:
    """Set cfg.launcher; for 'pytorch' without a GPU, start gloo from torchrun's env and use the CPU DDP wrapper.

    `cfg` is an mmengine Config (modified in place). No-op for launcher 'none' and on GPU machines.
    """
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher {launcher!r} is unknown: choose one of {', '.join(LAUNCHERS)}")
    cfg.launcher = launcher
    if launcher == "none" or torch.cuda.is_available():
        return
    if launcher != "pytorch":
        raise ConfigError(f"--launcher {launcher} without a GPU is not supported; use torchrun with "
                          f"--launcher pytorch (gloo backend) or run on a GPU node")
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ConfigError(f"--launcher pytorch needs torchrun's environment ({', '.join(missing)} unset); start "
                          f"it with tools/dist_train.sh or torchrun --nproc_per_node N")
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
        logger.info("no GPU visible: initialised the gloo process group (rank %d of %d)",
                    dist.get_rank(), dist.get_world_size())
    wrapper = dict(cfg.get("model_wrapper_cfg") or {})
    if wrapper.get("type", "MMDistributedDataParallel") == "MMDistributedDataParallel":
        wrapper["type"] = "CPUDistributedDataParallel"
    cfg.model_wrapper_cfg = wrapper
    env = dict(cfg.get("env_cfg") or {})
    env.setdefault("dist_cfg", {})["backend"] = "gloo"
    cfg.env_cfg = env
