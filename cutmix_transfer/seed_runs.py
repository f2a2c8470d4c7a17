"""Replicates without hand work: one training command repeated over seeds, each run in `<work_dir>/seed_<s>/`.

Training randomness is often larger than the effect a comparison looks for (docs/report_statistics.md), so a cell
of the report needs several runs that differ only in the seed. `tools/seed_runs.py` runs the same trainer command
once per seed, appending `--work-dir <work_dir>/seed_<s> --seed <s>`. Each run is an ordinary run of its trainer:
it holds its own work-dir lock, resumes with its own `--resume`, and works the same through `tools/dist_train.sh`
(whose extra arguments reach the trainer). A tool rather than a `--seeds` flag on each trainer: one place for the
three trainers and the torchrun launcher, and no trainer has to manage several work dirs in one process.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

SEED_DIR = "seed_{seed}"
_OWN_OPTIONS = ("--seed", "--work-dir")


@dataclass(frozen=True)
class SeedRun:
    """One replicate: its seed, its work dir and the command that trains it."""

    seed: int
    work_dir: Path
    command: list[str]


def seed_work_dir(work_dir: str | os.PathLike, seed: int) -> Path:
    """`<work_dir>/seed_<seed>`: where the run of one seed writes."""
    return Path(work_dir) / SEED_DIR.format(seed=int(seed))


def plan_seed_runs(command: Sequence[str], seeds: Sequence[int], work_dir: str | os.PathLike) -> list[SeedRun]:
    """The per-seed commands: `command` + `--work-dir <work_dir>/seed_<s> --seed <s>`. ConfigError when the command
    already sets either option (the tool sets them), when it is empty, or when a seed is repeated or negative."""
    command = list(command)
    if not command:
        raise ConfigError("no training command given: put it after `--`, e.g. -- python tools/train_det.py CONFIG")
    for arg in command:
        for opt in _OWN_OPTIONS:
            if arg == opt or arg.startswith(opt + "="):
                raise ConfigError(f"the command sets {opt}: leave it out, seed_runs sets it for each seed")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("--seeds needs at least one seed, e.g. --seeds 0 1 2")
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: give distinct non-negative seeds")
    runs = []
    for s in seeds:
        wd = seed_work_dir(work_dir, s)
        runs.append(SeedRun(s, wd, [*command, "--work-dir", str(wd), "--seed", str(s)]))
    return runs


def run_seeds(
    runs: Sequence[SeedRun], run: Callable[[list[str]], int] | None = None, echo: Callable[[str], None] = print
) -> None:
    """Run the replicates one after another; the first failure stops with a ConfigError naming the seed, its exit
    code and how to continue (the same command again, with the trainer's --resume)."""
    run = run or (lambda cmd: subprocess.run(cmd, check=False).returncode)
    for k, r in enumerate(runs, 1):
        echo(f"[seed_runs] {k}/{len(runs)}: seed {r.seed} -> {r.work_dir}")
        code = run(r.command)
        if code != 0:
            raise ConfigError(
                f"seed {r.seed} failed (exit {code}; its logs are in {r.work_dir}): fix the cause and rerun the same "
                "command with the trainer's --resume, which continues each seed where it stopped"
            )
