#!/usr/bin/env bash
# Run CMD with the CPU pin: every kernel choice that depends on the CPU fixed to AVX2 (ATen, oneDNN, MKL, numpy,
# OpenBLAS), a fixed thread count, the GPU hidden, so that float results are the same on every x86-64 machine
# with AVX2 (docs/reproducibility.md).
#
#   scripts/pinned.sh CMD [ARGS...]            e.g. scripts/pinned.sh .venv/bin/python tools/train_cls.py CFG
#   CUTMIX_PIN_THREADS=4 scripts/pinned.sh ...  another thread count (it is part of the pin: records name it)
#
# The variable list lives in one place, cutmix_transfer/pinning.py (pin_env); this wrapper runs that file as a
# script (-I: no package import, no torch or numpy loaded before the variables are set), which exec's CMD.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
exec "$PYTHON" -I "$ROOT/cutmix_transfer/pinning.py" "$@"
