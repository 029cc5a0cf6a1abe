#!/usr/bin/env bash
# Testing on a Slurm cluster with mmengine's slurm launcher (mmseg's convention):
#   [GPUS=4] [GPUS_PER_NODE=4] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#       bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py arguments...]
set -euo pipefail
source "$(dirname "$0")/launch_common.sh"
require_args 4 "bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py arguments...]" "$@"
run_srun "$1" "$2" test.py "$3" "$4" --launcher slurm "${@:5}"
