#!/usr/bin/env bash
# Install the whole stack into .venv (idempotent). Called by `make setup`, `make demo`, `make test`.
#
# What it does, in order (see docs/install.md for why each step is there):
#   1. python3.11 venv in .venv (the ready-marker .venv/.cutmix-ready is removed first, written last)
#   2. torch==2.14.1 torchvision==0.29.1 (site constraint caps these; pip takes them from local disk)
#   3. mmengine 0.10.7
#   4. mmcv 2.1.0 with compiled ops: built from the sdist with -std=c++20 and setuptools<81,
#      cached as a wheel under $CUTMIX_CACHE/wheels/<torch>-<cpu|cuXY>/ (outside the clone)
#   5. mmdet 3.3.0, pycocotools, opencv-python-headless, pycocoevalcap, grad-cam, tqdm, matplotlib, pytest, ruff
#   6. this package, editable (which compiles its one C module, cutmix_transfer/wsol/_contours.c, in place)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.venv"
READY="$VENV/.cutmix-ready"
CACHE="${CUTMIX_CACHE:-$HOME/.cache/cutmix_transfer}"
PYTHON="${PYTHON:-python3.11}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
STAMP="torch=$TORCH_VERSION tv=$TORCHVISION_VERSION mmcv=$MMCV_VERSION rev=4 $(sha256sum "$ROOT/setup.cfg" | cut -c1-16)"

say()  { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
BUILD=""
trap 'status=$?; [ -n "$BUILD" ] && rm -rf "$BUILD"; [ $status -ne 0 ] && printf "[setup] FAILED (exit %s); .venv is NOT marked ready. Fix the error above and re-run: make setup\n" "$status" >&2' EXIT

# The compiled module is rebuilt whenever its source changes, without redoing the rest.
EXT_STAMP="$(cat "$ROOT/setup.py" "$ROOT/cutmix_transfer/wsol/_contours.c" | sha256sum | cut -c1-16)"
EXT_READY="$VENV/.cutmix-ext"
ext_built() { [ -f "$EXT_READY" ] && [ "$(cat "$EXT_READY")" = "$EXT_STAMP" ] && ls "$ROOT"/cutmix_transfer/wsol/_contours*.so >/dev/null 2>&1; }
build_ext() {   # setuptools' editable-install notices go to a log, shown only on failure
    local log="$VENV/cutmix-ext-build.log"
    if ! "$VENV/bin/python" -m pip --disable-pip-version-check install -q --no-deps --no-build-isolation -e "$ROOT" \
            > "$log" 2>&1; then
        grep -v "^WARNING: Location '.*' is ignored" "$log" | tail -n 30 >&2
        fail "building cutmix_transfer's C module failed (above; full log $log); it needs gcc and the Python headers"
    fi
    printf '%s' "$EXT_STAMP" > "$EXT_READY"
}
if [ -f "$READY" ] && [ "$(cat "$READY")" = "$STAMP" ]; then
    if ! ext_built; then
        say "rebuilding cutmix_transfer's C module (its source changed)"
        build_ext
    fi
    say ".venv is ready ($STAMP)"
    exit 0
fi

command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] >= (3, 10), sys.version' \
    || fail "need Python >= 3.10 (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"

rm -f "$READY"
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV" || fail "python -m venv failed"
fi
PY="$VENV/bin/python"
PIP=(pip_quiet)
# pip's warnings about this machine's missing local find-links folders are noise: drop only those lines.
pip_quiet() { "$PY" -m pip --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2); }

say "1/5 build tools (setuptools<81 keeps pkg_resources, which mmcv's setup.py and mmengine import)"
"${PIP[@]}" install -q --upgrade pip 'setuptools<81' wheel ninja

say "2/5 torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION (about 1 minute, large)"
"${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

say "3/5 mmengine 0.10.7 (+ its dependencies, with opencv-python-headless instead of opencv-python)"
"${PIP[@]}" install -q 'numpy<3' 'opencv-python-headless>=4.8,<5' addict pyyaml yapf termcolor rich packaging pillow \
    matplotlib scipy shapely terminaltables six tqdm pycocotools pytest scikit-learn ruff==0.17.6 torchmetrics==1.9.0
"${PIP[@]}" install -q --no-deps mmengine==0.10.7

# ---- mmcv with compiled ops, from a cached wheel when there is one ----
CUDA_TAG=$("$PY" - <<'PY'
import shutil, torch
if torch.cuda.is_available() and shutil.which("nvcc") and torch.version.cuda:
    print("cu" + torch.version.cuda.replace(".", ""))
else:
    print("cpu")
PY
)
WHEEL_DIR="$CACHE/wheels/torch$TORCH_VERSION-$CUDA_TAG"
WHEEL=$(ls "$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$WHEEL" ]; then
    say "4/5 building mmcv $MMCV_VERSION with compiled ops ($CUDA_TAG) from source: this takes 10-15 minutes on 2 cores, once;"
    say "    the wheel is then cached in $WHEEL_DIR and later installs take seconds"
    BUILD=$(mktemp -d "${TMPDIR:-/tmp}/mmcv-build.XXXXXX")
    "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD" \
        || fail "could not download the mmcv $MMCV_VERSION source archive from PyPI"
    tar -xzf "$BUILD"/mmcv-$MMCV_VERSION.tar.gz -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    # torch 2.14 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17 for the C++ and nvcc extensions.
    grep -q -- '-std=c++17' "$SRC/setup.py" || fail "mmcv setup.py no longer contains -std=c++17; update scripts/setup.sh"
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
    if [ "$CUDA_TAG" != cpu ]; then export FORCE_CUDA=1; fi
    # the build prints hundreds of setuptools / compiler warnings: keep them in a log, show its tail on failure
    mkdir -p "$CACHE"
    BUILD_LOG="$CACHE/mmcv-build.log"
    if ! (cd "$BUILD" && "${PIP[@]}" wheel -q --no-build-isolation --no-deps "$SRC" -w "$BUILD/dist") \
            > "$BUILD_LOG" 2>&1; then
        tail -n 40 "$BUILD_LOG" >&2
        fail "mmcv build failed (last 40 lines above, full log $BUILD_LOG). Needs gcc with C++20 and the Python headers."
    fi
    mkdir -p "$WHEEL_DIR"
    built=$(ls "$BUILD"/dist/mmcv-*.whl)
    cp "$built" "$WHEEL_DIR/.tmp.$(basename "$built")"
    mv "$WHEEL_DIR/.tmp.$(basename "$built")" "$WHEEL_DIR/$(basename "$built")"   # atomic: no half wheel in the cache
    rm -rf "$BUILD"; BUILD=""
    WHEEL="$WHEEL_DIR/$(basename "$built")"
else
    say "4/5 mmcv $MMCV_VERSION from the cached wheel $WHEEL"
fi
"${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL"

say "5/5 mmdet 3.3.0, pycocoevalcap, grad-cam and this package (editable)"
"${PIP[@]}" install -q --no-deps mmdet==3.3.0 pycocoevalcap==1.2 grad-cam==1.5.7 ttach
build_ext

say "checking the stack imports and mmcv's compiled ops load"
"$PY" - <<'PY' || fail "the installed stack does not import (see above)"
import torch, torchvision, mmengine, mmcv, mmdet, cv2, pycocotools, pycocoevalcap
from mmcv.ops import nms, RoIAlign  # compiled ops
import cutmix_transfer
from cutmix_transfer.wsol import _contours  # the compiled border follower
print(f"[setup] torch {torch.__version__}, torchvision {torchvision.__version__}, mmengine {mmengine.__version__}, "
      f"mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, opencv {cv2.__version__}, cuda={torch.cuda.is_available()}")
PY
printf '%s' "$STAMP" > "$READY.tmp" && mv "$READY.tmp" "$READY"
say "done: .venv is ready"
