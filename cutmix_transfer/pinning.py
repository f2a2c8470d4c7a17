"""The CPU pin: one set of environment variables that makes float results independent of the machine's CPU.

PyTorch (ATen's own kernels, oneDNN, MKL), numpy's SIMD dispatch and OpenBLAS each pick kernels by the CPU's
instruction set at import time, and the thread count changes how reductions are split. Two runs that differ only
there differ in the last bits, and training compounds that (docs/reproducibility.md). `scripts/pinned.sh CMD...`
(= `python -m cutmix_transfer.pinning CMD...`) sets every variable below before anything is imported and runs CMD;
`make demo` and the tests that compare numbers with fixed values run through it.

This module imports neither torch nor numpy: it must be importable before the pin takes effect.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

PIN_THREADS_VAR = "CUTMIX_PIN_THREADS"  # the pinned thread count; default 2 (the demo machine's cores)
PIN_MARK_VAR = "CUTMIX_PINNED"  # set to "1" by the wrapper, so a record can tell a pinned run from a look-alike


def numpy_avx2_features() -> str:
    """numpy's dispatch targets up to AVX2, in the names of the installed numpy (read from its metadata: numpy must
    not be imported here). numpy 2.4 dispatches by x86-64 level (X86_V3 is AVX2 + FMA3 + F16C + BMI...; X86_V4
    and AVX512_* are the AVX-512 targets) and rejects the older feature names with an ImportWarning, which also
    leaves every target on; older numpy takes the feature names."""
    try:
        major, minor = (int(x) for x in importlib.metadata.version("numpy").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        major, minor = 2, 4
    if (major, minor) >= (2, 4):
        return "X86_V3"
    return "SSE SSE2 SSE3 SSSE3 SSE41 POPCNT SSE42 AVX F16C FMA3 AVX2"


def pin_env(threads: int | None = None) -> dict[str, str]:
    """The variables the wrapper sets. AVX2 is the common ground of the x86-64 machines the project meets (AMD EPYC,
    Intel Xeon with and without AVX-512); the GPU is hidden so that the numbers come from the CPU kernels."""
    n = str(threads if threads is not None else int(os.environ.get(PIN_THREADS_VAR, "2")))
    return {
        "ATEN_CPU_CAPABILITY": "avx2",  # ATen's CPU dispatch (default: the best the CPU has, e.g. avx512)
        "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's convolutions / matmuls
        "DNNL_MAX_CPU_ISA": "AVX2",  # the same, under oneDNN's older name
        "MKL_CBWR": "AVX2,STRICT",  # MKL's conditional numerical reproducibility
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "NPY_ENABLE_CPU_FEATURES": numpy_avx2_features(),  # numpy's SIMD dispatch
        "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS's dynamic-arch kernels (an AVX2 core)
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "CUDA_VISIBLE_DEVICES": "",
        PIN_THREADS_VAR: n,
        PIN_MARK_VAR: "1",
    }


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def pin_state() -> dict[str, Any]:
    """What this process runs under: pinned (every variable as the wrapper sets it), the variables' values and the
    CPU model. Goes into every results.json (`machine`)."""
    expected = pin_env(
        int(os.environ.get(PIN_THREADS_VAR, "2")) if os.environ.get(PIN_THREADS_VAR, "").isdigit() else None
    )
    env = {k: os.environ.get(k) for k in expected}
    return {"pinned": all(env[k] == v for k, v in expected.items()), "env": env, "cpu_model": cpu_model()}


def pin_identity() -> str:
    """The pin as the protocol block names it: 'avx2-threads<N>' when pinned, else 'unpinned'."""
    state = pin_state()
    return f"avx2-threads{state['env'][PIN_THREADS_VAR]}" if state["pinned"] else "unpinned"


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: scripts/pinned.sh CMD [ARGS...]   (CUTMIX_PIN_THREADS=N sets the thread count, default 2)")
        sys.exit(0 if argv else 2)
    os.environ.update(pin_env())
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        sys.exit(f"pinned: cannot run {argv[0]!r}: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
