#!/usr/bin/env bash
# Distributed training: tools/dist_train.sh CONFIG NPROC [train.py args...]
# torchrun launches NPROC processes on this node with --launcher pytorch; the student is wrapped
# in DDP, the teacher never is (it lives outside the module tree) and is never updated. On a
# machine without CUDA it trains on the CPU: kdzoo/runner.py picks the backend from the device
# (nccl with CUDA, gloo without), whatever env_cfg.dist_cfg says, and turns SyncBN into BN.
#
# Several nodes, as OpenMMLab's dist_train.sh: run it on every node with the same CONFIG, NPROC,
# MASTER_ADDR and PORT, and NODE_RANK 0 .. NNODES-1:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8   # node 0
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8   # node 1
# NNODES (default 1), NODE_RANK (0), MASTER_ADDR (127.0.0.1: node 0's address), PORT (29500:
# the rendezvous port on node 0). PYTHON: the interpreter (default: the checkout's .venv).
#
# Paths (CONFIG, --work-dir, any other argument) are read from the directory the script is run
# from, as tools/train.py reads them: the script does not change directory. CONFIG may be a
# kdzoo::NAME (kdzoo's configs/NAME, e.g. kdzoo::quickstart/msdcrd.py). Without the checkout,
# the same: torchrun --nproc_per_node=N -m kdzoo train CONFIG --launcher pytorch.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: [NNODES=N NODE_RANK=R MASTER_ADDR=A PORT=P] $0 CONFIG NPROC [train.py args...]" >&2
  exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
if [[ "$CONFIG" != *::* && ! -f "$CONFIG" ]]; then  # kdzoo::NAME: train.py resolves it
  echo "config not found: $CONFIG (paths are read from $(pwd))" >&2
  exit 2
fi
TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-$( [ -x "$TOOLS/../.venv/bin/python" ] && echo "$TOOLS/../.venv/bin/python" || echo python)}
exec "$PY" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --nproc_per_node="$NPROC" \
  --master_port="${PORT:-29500}" "$TOOLS/train.py" "$CONFIG" --launcher pytorch "$@"
