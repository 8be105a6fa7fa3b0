#!/usr/bin/env bash
# Training on a Slurm cluster, as OpenMMLab's slurm_train.sh:
#   [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#     tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# srun starts GPUS tasks, one per GPU, GPUS_PER_NODE per node (GPUS=16 GPUS_PER_NODE=8: 2 nodes),
# each running tools/train.py --launcher slurm: kdzoo/runner.py reads the rank and world size from
# Slurm's variables (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) and the rendezvous from the first
# host of SLURM_NODELIST, port PORT (default 29500). On nodes without CUDA each task trains on the
# CPU (gloo, SyncBN turned into BN): set GPUS to the number of processes, GPUS_PER_NODE to the
# processes per node and NO_GRES=1 (no --gres request).
# SRUN_ARGS: more srun options (e.g. --quotatype=auto, --time=...). PYTHON: the interpreter
# (default: the checkout's .venv). Paths are read from the directory the script is run from.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: [GPUS=N GPUS_PER_NODE=N CPUS_PER_TASK=N SRUN_ARGS=...] $0 PARTITION JOB_NAME" \
    "CONFIG WORK_DIR [train.py args...]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
if [[ "$CONFIG" != *::* && ! -f "$CONFIG" ]]; then  # kdzoo::NAME: train.py resolves it
  echo "config not found: $CONFIG (paths are read from $(pwd))" >&2
  exit 2
fi
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-$( [ -x "$TOOLS/../.venv/bin/python" ] && echo "$TOOLS/../.venv/bin/python" || echo python)}
GRES=()
if [ "${NO_GRES:-0}" != 1 ]; then GRES=(--gres="gpu:$GPUS_PER_NODE"); fi
export MASTER_PORT=${PORT:-29500}
# shellcheck disable=SC2086  # SRUN_ARGS holds several options
srun -p "$PARTITION" --job-name="$JOB_NAME" "${GRES[@]}" --ntasks="$GPUS" \
  --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
  $SRUN_ARGS "$PY" -u "$TOOLS/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher slurm "$@"
