#!/usr/bin/env bash
# Distributed testing with torchrun: bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [ARGS...]
# NNODES, NODE_RANK, PORT, MASTER_ADDR and PYTHON are read from the environment.
set -euo pipefail
source "$(dirname "$0")/launch_common.sh"
require_args 3 "bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py arguments...]" "$@"
run_torchrun "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
