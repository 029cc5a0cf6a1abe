#!/usr/bin/env bash
# Distributed training with torchrun: bash tools/dist_train.sh CONFIG NPROC [ARGS...]
# Works on CPU-only machines too (gloo; see possec/runtime/distributed.py).
# NNODES, NODE_RANK, PORT, MASTER_ADDR and PYTHON are read from the environment.
set -euo pipefail
source "$(dirname "$0")/launch_common.sh"
require_args 2 "bash tools/dist_train.sh CONFIG NPROC [train.py arguments...]" "$@"
run_torchrun "$2" train.py "$1" --launcher pytorch "${@:3}"
