"""Distributed training on CPU-only machines, and SyncBN without CUDA.

mmengine 0.10.7 initialises the ``pytorch`` launcher through
``_init_dist_pytorch``, which calls ``torch.cuda.set_device`` unconditionally
and crashes on a CPU build, and wraps the model in DDP with
``device_ids=[LOCAL_RANK]``, which DDP rejects for CPU modules. The recipe
applied here, only when the launcher is ``pytorch`` or ``slurm`` and CUDA is
absent:

1. initialise ``torch.distributed`` with the ``gloo`` backend from the
   variables ``torchrun`` sets (or, under ``slurm``, from ``SLURM_PROCID``,
   ``SLURM_NTASKS``, ``SLURM_LOCALID`` and the first host of
   ``SLURM_NODELIST``, as mmengine's ``_init_dist_slurm`` derives them),
   before the Runner is built (the Runner then skips its own
   initialisation);
2. wrap the model with ``MMDistributedDataParallel(device_ids=None)``;
3. replace ``SyncBN`` by ``BN`` (SyncBN raises on CPU tensors when
   distributed), with one logged warning.

On a CUDA machine nothing here changes the config: mmseg's normal path (nccl,
SyncBN) is untouched.
"""
import os
import subprocess
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log

_SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN')


def replace_sync_bn(cfg_node, replacement: str = 'BN') -> int:
    """Replace every SyncBN norm type in a config tree in place.

    Args:
        cfg_node (dict | list): A config (sub)tree.
        replacement (str): The norm type to use instead. Default: 'BN'.

    Returns:
        int: How many norm configs were replaced.
    """
    count = 0
    if isinstance(cfg_node, dict):
        if cfg_node.get('type') in _SYNC_BN_TYPES:
            cfg_node['type'] = replacement
            count += 1
        for value in cfg_node.values():
            count += replace_sync_bn(value, replacement)
    elif isinstance(cfg_node, (list, tuple)):
        for value in cfg_node:
            count += replace_sync_bn(value, replacement)
    return count


def degrade_sync_bn_on_cpu(cfg: Config) -> int:
    """On a machine without CUDA, turn SyncBN into BN in ``cfg.model``.

    Returns:
        int: The number of replaced norm configs (0 when CUDA is present).
    """
    if torch.cuda.is_available() or 'model' not in cfg:
        return 0
    count = replace_sync_bn(cfg.model)
    if count:
        print_log(
            f'CUDA is not available: replaced SyncBN by BN in {count} norm '
            f'config(s) of the model (SyncBN needs CUDA tensors when '
            f'distributed).', logger='current', level=30)
    return count


def slurm_environment() -> None:
    """Set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT from
    the variables ``srun`` sets, as mmengine's ``_init_dist_slurm`` does
    (MASTER_ADDR and MASTER_PORT are kept when already set; the port
    defaults to 29500)."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
               if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher slurm expects the environment set by srun, but '
            f'{", ".join(missing)} is not set: start the run with `bash '
            f'tools/slurm_train.sh PARTITION JOB_NAME CONFIG` (or use '
            f'--launcher pytorch under torchrun)')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        try:
            hosts = subprocess.run(['scontrol', 'show', 'hostnames', nodes],
                                   capture_output=True, text=True).stdout
        except FileNotFoundError:  # no scontrol: a plain host list
            hosts = nodes.replace(',', ' ')
        hosts = hosts.split()
        os.environ['MASTER_ADDR'] = hosts[0] if hosts else nodes
    os.environ.setdefault('MASTER_PORT', '29500')


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare a CPU-only ``torchrun`` run before the Runner is built.

    Args:
        cfg (Config): The run's config; ``model_wrapper_cfg`` and
            ``launcher`` are set in place.
        launcher (str): The launcher given on the command line
            ('pytorch' under torchrun, 'slurm' under srun).

    Returns:
        bool: True when the CPU distributed recipe was applied.
    """
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available():
        return False
    if launcher == 'slurm':
        slurm_environment()
    missing = [k for k in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                           'MASTER_PORT') if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch expects the environment set by torchrun, '
            f'but {", ".join(missing)} is not set: start the run with '
            f'`bash tools/dist_train.sh CONFIG NPROC` (or `torchrun '
            f'--nproc_per_node=N tools/train.py CONFIG --launcher pytorch`).')
    if not torch_dist.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
        kwargs = {'timeout': timedelta(seconds=timeout)} if timeout else {}
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            **kwargs)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    cfg.launcher = launcher
    return True
