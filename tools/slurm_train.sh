#!/usr/bin/env bash
# Training on a Slurm cluster with mmengine's slurm launcher (mmseg's convention):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#       bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py arguments...]
# srun starts GPUS tasks; each runs tools/train.py --launcher slurm and reads its
# rank from SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID (on CPU-only nodes possec
# initialises gloo from them, see possec/runtime/distributed.py).
set -euo pipefail
source "$(dirname "$0")/launch_common.sh"
require_args 3 "bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py arguments...]" "$@"
run_srun "$1" "$2" train.py "$3" --launcher slurm "${@:4}"
