#!/usr/bin/env bash
# Distributed training through torchrun, for any of the project's trainers.
#
#   tools/dist_train.sh CONFIG NGPUS [tool args...]
#   TOOL=tools/train_det.py tools/dist_train.sh configs/voc_faster_rcnn_cutmix.py 8 --backbone ckpt.pth
#
# TOOL picks the trainer (default tools/train_cls.py; tools/train_det.py and tools/train_caption.py take the same
# --launcher flag). One node: torchrun picks a free port itself (--standalone) unless PORT is set. Multi-node: set
# NNODES, NODE_RANK, MASTER_ADDR and PORT on every node. Without a GPU the processes use the gloo backend on the
# CPU (one process per NGPUS), which is how the tests run it.
#
# One run per work dir (docs/reproducibility.md): with --work-dir, a work dir that another run holds is refused
# here in one line, before torchrun starts. The ranks stop when this launcher dies: torchrun runs under this
# script's pid (exec), which CUTMIX_LAUNCHER_PID hands to them.
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: [TOOL=tools/train_cls.py] [PORT=N] $0 CONFIG NGPUS [tool args...]" >&2
    exit 2
fi
CONFIG=$1
NGPUS=$2
shift 2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOL=${TOOL:-"$ROOT/tools/train_cls.py"}
# the project's own environment (`make setup` installs into .venv) unless PYTHON names another interpreter
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# the work dir named on the command line: refuse a busy one now (writes nothing)
WORK_DIR=""
prev=""
for arg in "$@"; do
    case "$arg" in
        --work-dir=*) WORK_DIR=${arg#--work-dir=} ;;
        *) if [ "$prev" = "--work-dir" ]; then WORK_DIR=$arg; fi ;;
    esac
    prev=$arg
done
if [ -n "$WORK_DIR" ]; then
    "$PYTHON" -I "$ROOT/cutmix_transfer/worklock.py" check "$WORK_DIR" || exit $?
fi

if [ "$NNODES" = 1 ] && [ -z "${PORT:-}" ]; then
    RDZV=(--standalone)  # a free port, chosen by torchrun when it binds it (no race with another job)
else
    RDZV=(--nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --master_port="${PORT:-29500}")
fi
export CUTMIX_LAUNCHER_PID=$$
exec "$PYTHON" -m torch.distributed.run "${RDZV[@]}" --nproc_per_node="$NGPUS" "$TOOL" "$CONFIG" --launcher pytorch "$@"
