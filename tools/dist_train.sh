#!/usr/bin/env bash
# Distributed training: tools/dist_train.sh CONFIG NPROC [train.py args...]
# torchrun launches NPROC processes with --launcher pytorch; the student is wrapped in DDP, the
# teacher never is (it lives outside the module tree) and is never updated. On a machine without
# CUDA it trains on the CPU: kdzoo/runner.py picks the backend from the device (nccl with CUDA,
# gloo without), whatever env_cfg.dist_cfg says. PORT sets the rendezvous port (default 29500).
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
exec "$PY" -m torch.distributed.run --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
  tools/train.py "$CONFIG" --launcher pytorch "$@"
