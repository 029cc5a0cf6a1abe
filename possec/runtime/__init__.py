"""Fixes for the mmcv 2.1 / mmengine 0.10.7 / torch >= 2.6 stack.

Importing possec applies :func:`register_trusted_local_loader`; the CPU
distributed recipe and the SyncBN fallback are applied by possec's tools.
"""
from .checkpoint import load_local_checkpoint, register_trusted_local_loader
from .log_handlers import drop_closed_file_handlers
from .distributed import (degrade_sync_bn_on_cpu, replace_sync_bn,
                          setup_cpu_distributed)

register_trusted_local_loader()

__all__ = [
    'degrade_sync_bn_on_cpu', 'drop_closed_file_handlers',
    'load_local_checkpoint',
    'register_trusted_local_loader', 'replace_sync_bn',
    'setup_cpu_distributed'
]
