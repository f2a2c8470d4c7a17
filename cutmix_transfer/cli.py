"""What every tool shares: logging set-up and turning user errors into one line and exit code 2."""
from __future__ import annotations

import argparse
import functools
import logging
import sys
from typing import Callable

from .errors import CutmixTransferError


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s", datefmt="%H:%M:%S")


def add_run_args(p: argparse.ArgumentParser, seed_default: int | None = 0, seed_help: str = "random seed",
                 launcher: bool = True, trust_help: str = "the checkpoint files") -> None:
    """The options every mmengine-based tool shares: --cfg-options, --seed, --trust-checkpoint, (--launcher and
    torchrun's --local-rank), --verbose."""
    from mmengine.config import DictAction

    p.add_argument("--cfg-options", nargs="+", action=DictAction, default=None, metavar="KEY=VALUE",
                   help="override config keys, e.g. train_cfg.max_epochs=2 train_dataloader.batch_size=16")
    p.add_argument("--seed", type=int, default=seed_default, help=seed_help)
    p.add_argument("--trust-checkpoint", action="store_true",
                   help=f"allow {trust_help} to need arbitrary unpickling (only for files you trust)")
    if launcher:
        p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none",
                       help="'pytorch' under torchrun (tools/dist_train.sh); without a GPU it uses gloo")
        p.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true")


def main_guard(fn: Callable[..., int | None]) -> Callable[..., int]:
    """Run a tool's main(); a CutmixTransferError becomes `error: <message>` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> int:
        try:
            return int(fn(*args, **kwargs) or 0)
        except CutmixTransferError as e:
            msg = " ".join(str(e).split())  # one line, always
            print(f"error: {msg}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
