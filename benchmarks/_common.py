"""Helpers shared by the benchmark scripts: wall-clock medians (CUDA synchronised), where a benchmark ran, an aligned
text table and the atomic JSON write of a result. Imported as `_common` (each script's folder is on sys.path)."""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import torch
import torchvision

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the scripts run as `python benchmarks/x.py`, the package maybe not installed
    sys.path.insert(0, str(REPO))

from cutmix_transfer.io import atomic_write_json  # noqa: E402


def _sync(device: torch.device | None) -> Callable[[], None]:
    """torch.cuda.synchronize on a CUDA device, else a no-op: a timed call must include the kernels it queued."""
    return torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)


def time_round_robin(
    fns: Mapping[str, Callable[[], object]], reps: int, device: torch.device | None = None, warmup: int = 0
) -> dict[str, list[float]]:
    """Wall seconds of each fn() over `reps` rounds of one call each (after `warmup` untimed rounds), so that a
    change in machine load affects every fn alike."""
    sync = _sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for rnd in range(warmup + reps):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            if rnd >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def medians(times: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The median of each list of times."""
    return {k: statistics.median(v) for k, v in times.items()}


def time_median(
    fn: Callable[[], object], reps: int, device: torch.device | None = None, warmup: int = 0
) -> tuple[float, object]:
    """Median wall seconds of fn() over `reps` calls after `warmup` untimed ones, and the last call's result."""
    sync = _sync(device)
    for _ in range(warmup):
        fn()
    times, out = [], None
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def machine_name() -> str:
    """The CPU's name as the platform reports it (the architecture where it reports none)."""
    return platform.processor() or platform.machine()


def gpu_name(device: torch.device) -> str | None:
    """The CUDA device's name, None on the CPU."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else None


def environment(device: torch.device) -> dict[str, object]:
    """Where a benchmark ran, for its result: the device, torch's CPU threads, the torch and torchvision versions,
    the CPU's name and the GPU's (None on the CPU)."""
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "machine": machine_name(),
        "gpu": gpu_name(device),
    }


def print_table(header: Sequence[str], rows: Iterable[Sequence[str]], widths: Sequence[int]) -> None:
    """Print an aligned text table: the first column left-aligned, the others right-aligned, each in its width."""
    for cells in (header, *rows):
        first, *rest = cells
        print(f"{first:<{widths[0]}}" + "".join(f" {c:>{w}}" for c, w in zip(rest, widths[1:])))


def write_result(path: str | Path, result: dict) -> None:
    """Write the benchmark's result JSON atomically and say where."""
    atomic_write_json(path, result)
    print(f"written {path}")


def report_result(
    path: str | Path,
    result: dict,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    widths: Sequence[int],
    summary: str | None = None,
) -> None:
    """A benchmark's end: print its title line, its table (`print_table`) and its summary line when it has one,
    then write its result JSON atomically."""
    print(title)
    print_table(header, rows, widths)
    if summary is not None:
        print(summary)
    write_result(path, result)


def parse_args(
    p: argparse.ArgumentParser, name: str, argv: list[str] | None = None, threads: int | None = None, seed: bool = True
) -> argparse.Namespace:
    """Add the options every benchmark has (--threads, --seed when `seed`, --out defaulting to
    benchmarks/results/<name>.json), parse `argv` and apply --threads to torch."""
    default_threads = threads or "torch's choice"
    p.add_argument("--threads", type=int, default=threads, help=f"torch CPU threads (default: {default_threads})")
    if seed:
        p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / f"{name}.json"), help="result JSON path")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args
