"""Helpers shared by the tests that drive the real tools (tools/*.py): load a tool's main in-process, run it as a
subprocess or under torchrun, build its common arguments, and read its one-line errors and CSV outputs."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

# --cfg-options shrinking configs/caption/nic_demo.py to seconds on the CPU: 16-wide embedding and LSTM, 8 tokens,
# 8 training images of 32 px at batch 4, validation in the main process after every epoch, a log line per iteration.
NIC_TINY_OPTIONS = [
    "model.embed_dim=16",
    "model.freeze_encoder=False",
    "model.hidden_dim=16",
    "model.max_len=8",
    "train_dataloader.batch_size=4",
    "train_dataloader.dataset.image_size=32",
    "train_dataloader.dataset.resize=36",
    "train_dataloader.dataset.max_images=8",
    "train_dataloader.dataset.max_len=8",
    "val_dataloader.num_workers=0",
    "val_dataloader.persistent_workers=False",
    "val_dataloader.dataset.image_size=32",
    "train_cfg.val_interval=1",
    "default_hooks.logger.interval=1",
]


def load_tool_main(tool: Path, module_name: str) -> Callable[[list[str]], int]:
    """The main() of a tool script, loaded from its file (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(module_name, tool)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def tool_env() -> dict[str, str]:
    """The environment of a tool subprocess: one intra-op thread, the repository importable."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


def run_tool(tool: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """The tool as a subprocess, with --no-progress --workers 0 added; output captured as text."""
    return subprocess.run(
        [sys.executable, str(tool), *args, "--no-progress", "--workers", "0"],
        cwd=REPO,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for torchrun's --master_port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_torchrun(tool: Path, args: Sequence[str], nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """The tool under torch.distributed.run with `nproc` processes on one node, on a free local port."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        str(tool),
        *args,
    ]
    return subprocess.run(cmd, cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=timeout)


def eval_args(source_flag: str, source: Path, dataset: str, data_root: Path, out: Path, *extra: str) -> list[str]:
    """An evaluation tool's arguments: the model or maps (`source_flag` source), the dataset, --out, no workers and
    no progress bar, then `extra`."""
    return [
        source_flag,
        str(source),
        "--dataset",
        dataset,
        "--data-root",
        str(data_root),
        "--out",
        str(out),
        "--workers",
        "0",
        "--no-progress",
        *extra,
    ]


def run_single_threaded(main: Callable[[list[str]], int], args: list[str]) -> int:
    """main(args) with one intra-op thread, as each torchrun worker uses (the thread count changes the
    convolutions' float rounding); the previous thread count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(args)
    finally:
        torch.set_num_threads(threads)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single 'error: ' line of a tool that exited 2 without a traceback (asserted)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return errors[0]


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV file with a header, as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_unreadable_image(
    tool: Path, main: Callable[[list[str]], int], args: list[str], out_root: Path, bad_sample, kept: int
) -> None:
    """The project's rule for an unreadable image, on an evaluation tool: without --skip-unreadable a one-line error
    naming the file and the flag and no results.json; with it the run completes on `kept` images, recording the
    skipped one in results.json and leaving it out of per_image.csv."""
    line = one_line_error(run_tool(tool, *args, "--out", str(out_root / "fail")))
    assert str(bad_sample.path) in line and "--skip-unreadable" in line
    assert not (out_root / "fail" / "results.json").exists()
    skip = out_root / "skip"
    assert main([*args, "--out", str(skip), "--skip-unreadable", "--workers", "0", "--no-progress"]) == 0
    rec = json.loads((skip / "results.json").read_text())
    assert rec["skipped_unreadable"]["count"] == 1 and rec["num_images"] == kept
    assert rec["skipped_unreadable"]["images"][0]["image_id"] == bad_sample.image_id
    assert len(read_csv(skip / "per_image.csv")) == kept
