"""Distributed set-up: the trainers' launcher (classification, detection, captioning) and the torchrun helpers
of the evaluation tools (one process per rank, gloo on CPU, nccl on GPU).

On GPU machines mmengine's own launcher does everything. Without a visible GPU (CPU tests, CPU clusters)
two things in mmengine 0.10.7 break: `init_dist('pytorch')` calls `torch.cuda.set_device` unconditionally,
and the Runner wraps the model in MMDistributedDataParallel with device_ids=[LOCAL_RANK], which DDP rejects for
CPU modules. `prepare_launcher` initialises a gloo process group first (the Runner then skips init_dist) and
selects `CPUDistributedDataParallel` (runner.py: this module stays free of mmengine, so that the evaluators do not
import it), which passes device_ids=None for a CPU module.

The evaluation tools shard their images `rank::world` under torchrun without mmengine: `setup_torchrun` joins
(or starts) the process group, `all_reduce_counts` sums integer counts exactly, `all_gather_objects` collects
per-rank lists and `gather_rows` per-rank rows in dataset order, so that the merged result equals the single-process
run.

No rank outlives its launcher for long (`watch_launcher`): torchrun starts each worker in a session of its own
(`start_new_session=True`), so a `kill -9` of torchrun, or a scheduler that kills only the launcher, leaves the ranks
running: they went on training and wrote checkpoints, `last_checkpoint` and results.json into the work dir that a
`--resume` started at once was writing too. Each rank therefore asks the kernel for SIGKILL when its parent dies
(Linux `prctl(PR_SET_PDEATHSIG)`: no Python code runs in between, whatever the rank is doing, in a collective or
in a write), and a watchdog thread checks the parent pid every second where prctl is missing. Before a rename,
`last_checkpoint`, a deletion or a record, the writer checks once more (`stop_if_launcher_gone`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, TypeVar, get_args

import numpy as np
import torch
import torch.distributed as dist

from .errors import ConfigError

logger = logging.getLogger(__name__)
Launcher = Literal["none", "pytorch", "slurm", "mpi"]  # mmengine's launchers (the trainers' --launcher)
LAUNCHERS: tuple[str, ...] = get_args(Launcher)


LAUNCHER_PID_VAR = "CUTMIX_LAUNCHER_PID"  # set by tools/dist_train.sh to its own pid, which torchrun exec's into
# what says that this process is a rank started by a launcher (and not, say, a test calling prepare_launcher)
_RANK_MARKERS = {
    "pytorch": ("TORCHELASTIC_RUN_ID", LAUNCHER_PID_VAR),
    "slurm": ("SLURM_PROCID",),
    "mpi": ("OMPI_COMM_WORLD_RANK",),
}
_PR_SET_PDEATHSIG = 1
_launcher_pid: int | None = None  # the parent this rank watches; None: not watching (a single process)


def _die(message: str) -> None:
    """One line on stderr, then SIGKILL to this rank and, when it leads its process group (torchrun's workers do),
    to its DataLoader workers: nothing more is written, no clean-up runs."""
    try:
        sys.stderr.write(f"error: {message}; rank pid {os.getpid()} stops now and writes nothing more\n")
        sys.stderr.flush()
    finally:
        if os.getpgid(0) == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def _set_parent_death_signal() -> bool:
    """Ask the kernel (Linux) to SIGKILL this process when its parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(launcher_pid: int, poll_s: float) -> None:
    while True:
        time.sleep(poll_s)
        if os.getppid() != launcher_pid:
            _die(f"the launcher (pid {launcher_pid}) is gone")


def watch_launcher(launcher: Launcher, poll_s: float = 1.0) -> int | None:
    """Under a launcher (torchrun, srun, mpirun: their environment says so), end this rank within `poll_s` seconds
    of the launcher's death (at once on Linux); -> the launcher's pid, or None when this is no launched rank. A rank
    whose launcher died before this call (its parent is not the pid tools/dist_train.sh recorded) stops here."""
    global _launcher_pid
    if _launcher_pid is not None:
        return _launcher_pid
    if launcher == "none" or not any(k in os.environ for k in _RANK_MARKERS.get(launcher, ())):
        return None
    parent = os.getppid()
    recorded = os.environ.get(LAUNCHER_PID_VAR, "")
    if recorded.isdigit() and int(recorded) != parent:
        _die(f"the launcher (pid {recorded}) is gone before this rank started")
    death_signal = _set_parent_death_signal()
    if os.getppid() != parent:  # died between the two calls
        _die(f"the launcher (pid {parent}) is gone before this rank started")
    _launcher_pid = parent
    threading.Thread(target=_watch_parent, args=(parent, poll_s), name="launcher-watch", daemon=True).start()
    logger.info(
        "rank pid %d watches its launcher, pid %d (%s)",
        os.getpid(),
        parent,
        "SIGKILL on its death, and a check every second" if death_signal else f"a check every {poll_s:g} s",
    )
    return parent


def launcher_alive() -> bool:
    """False once the launcher this rank watches is gone (always True in a process without a launcher)."""
    return _launcher_pid is None or os.getppid() == _launcher_pid


def stop_if_launcher_gone(what: str) -> None:
    """Called before `what` is written, renamed or deleted in the work dir: a rank whose launcher is gone stops."""
    if not launcher_alive():
        _die(f"the launcher (pid {_launcher_pid}) is gone: not {what}")


def prepare_launcher(cfg: Any, launcher: Launcher) -> None:
    """Set cfg.launcher; under a launcher, watch it (`watch_launcher`) and start the process group (gloo from
    torchrun's env and the CPU DDP wrapper without a GPU; mmengine's init_dist, as the Runner would, with one), so
    that the ranks can agree on the work dir's lock before any of them writes there.

    `cfg` is an mmengine Config (modified in place). No-op for launcher 'none'.
    """
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher {launcher!r} is unknown: choose one of {', '.join(LAUNCHERS)}")
    cfg.launcher = launcher
    if launcher == "none":
        return
    if torch.cuda.is_available():
        watch_launcher(launcher)
        if not dist.is_initialized():  # the Runner skips its own init_dist once the group exists
            from mmengine.dist import init_dist

            init_dist(launcher, **dict((cfg.get("env_cfg") or {}).get("dist_cfg") or {"backend": "nccl"}))
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
    watch_launcher(launcher)
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


T = TypeVar("T")


def rank_batches(items: Sequence[int], batch_size: int, rank: int, world: int) -> list[list[int]]:
    """The batches of `items` this rank processes: the single-process batch sequence, every world-th from rank, so
    that the evaluators' numbers under torchrun equal one process's."""
    chunks = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
    return chunks[rank::world]


def run_on_ranks(evaluate: Callable[[torch.device, int, int], T], device: torch.device) -> T:
    """An evaluator's body on this torchrun rank (a single process: rank 0 of 1): join the group
    (`setup_torchrun`), call evaluate(device, rank, world), and leave the group it created, whatever happens."""
    r = setup_torchrun(device)
    try:
        return evaluate(r.device, r.rank, r.world_size)
    finally:
        if r.created_group and dist.is_initialized():
            dist.destroy_process_group()


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
