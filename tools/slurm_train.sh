#!/usr/bin/env bash
# Training on a Slurm cluster with mmengine's slurm launcher (mmseg's convention):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#       bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py arguments...]
# srun starts GPUS tasks; each runs tools/train.py --launcher slurm and reads its
# rank from SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID (on CPU-only nodes possec
# initialises gloo from them, see possec/runtime/distributed.py).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py arguments...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
export PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}"
# SRUN_ARGS is split on spaces on purpose (several srun options in one variable).
# shellcheck disable=SC2086
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$(dirname "$0")/train.py" "$CONFIG" --launcher slurm "${@:4}"
