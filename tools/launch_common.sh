#!/usr/bin/env bash
# Shared by tools/dist_{train,test}.sh and tools/slurm_{train,test}.sh (sourced,
# not run): the argument check and the torchrun / srun command lines.

# require_args MIN USAGE "$@": exit 2 with "usage: USAGE" unless there are at
# least MIN arguments.
require_args() {
    local min=$1 usage=$2
    shift 2
    if [ $# -lt "$min" ]; then
        echo "usage: $usage" >&2
        exit 2
    fi
}

# run_torchrun NPROC SCRIPT ARGS...: exec SCRIPT (next to this file) with
# ARGS under torchrun with NPROC processes a node; NNODES, NODE_RANK, PORT, MASTER_ADDR
# and PYTHON come from the environment.
run_torchrun() {
    local nproc=$1 script=$2
    shift 2
    local nnodes=${NNODES:-1} node_rank=${NODE_RANK:-0} port=${PORT:-29500}
    local master_addr=${MASTER_ADDR:-127.0.0.1} python=${PYTHON:-python}
    exec "$python" -m torch.distributed.run \
        --nnodes="$nnodes" --node_rank="$node_rank" --master_addr="$master_addr" \
        --nproc_per_node="$nproc" --master_port="$port" \
        "$(dirname "${BASH_SOURCE[0]}")/$script" "$@"
}

# run_srun PARTITION JOB_NAME SCRIPT ARGS...: start GPUS tasks of SCRIPT
# (next to this file) with ARGS under srun (mmseg's options); GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS and
# PYTHON come from the environment.
run_srun() {
    local partition=$1 job_name=$2 script=$3
    shift 3
    local gpus=${GPUS:-4} gpus_per_node=${GPUS_PER_NODE:-4}
    local cpus_per_task=${CPUS_PER_TASK:-5} srun_args=${SRUN_ARGS:-""}
    local python=${PYTHON:-python} here
    here=$(dirname "${BASH_SOURCE[0]}")
    export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
    # SRUN_ARGS is split on spaces on purpose (several srun options in one
    # variable).
    # shellcheck disable=SC2086
    srun -p "$partition" \
        --job-name="$job_name" \
        --gres=gpu:"$gpus_per_node" \
        --ntasks="$gpus" \
        --ntasks-per-node="$gpus_per_node" \
        --cpus-per-task="$cpus_per_task" \
        --kill-on-bad-exit=1 \
        $srun_args \
        "$python" -u "$here/$script" "$@"
}
