#!/usr/bin/env bash
# Distributed training through torchrun, for any of the project's trainers.
#
#   tools/dist_train.sh CONFIG NGPUS [tool args...]
#   TOOL=tools/train_det.py tools/dist_train.sh configs/voc_faster_rcnn_cutmix.py 8 --backbone ckpt.pth
#
# TOOL picks the trainer (default tools/train_cls.py; tools/train_det.py and tools/train_caption.py take the same
# --launcher flag). Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node. Without a GPU the
# processes use the gloo backend on the CPU (one process per NGPUS), which is how the tests run it.
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: [TOOL=tools/train_cls.py] $0 CONFIG NGPUS [tool args...]" >&2
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
PORT=${PORT:-29500}

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --master_port="$PORT" \
    --nproc_per_node="$NGPUS" \
    "$TOOL" "$CONFIG" --launcher pytorch "$@"
