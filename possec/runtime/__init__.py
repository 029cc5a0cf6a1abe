"""Fixes for the mmcv 2.1 / mmengine 0.10.7 / torch >= 2.6 stack.

Safe checkpoint loading, atomic checkpoint saves, checkpoint provenance
(the settings a checkpoint was trained with, in plain types), the
weights-fit check, the CPU distributed recipe and SyncBN fallback, the label check, log
handler clean-up and quiet logs. Importing it changes no global state: it
only registers the :class:`CheckSegLabel` transform. possec's entry points
(:mod:`possec.apis`) apply the fixes for the duration of a run. Nothing here
imports :mod:`possec.models`; the hooks live in :mod:`possec.engine`.
"""
from .atomic_save import (atomic_checkpoint_saving, latest_checkpoint,
                          remove_partial_saves, save_checkpoint_atomic)
from .checkpoint import (allowed_globals, history_buffer_method, is_trusted,
                         load_local_checkpoint, trust)
from .distributed import (degrade_sync_bn_on_cpu, replace_sync_bn,
                          setup_cpu_distributed, slurm_environment)
from .label_check import CheckSegLabel, insert_label_checks
from .log_handlers import drop_closed_file_handlers
from .weights import (check_weights_fit, checkpoint_loading,
                      load_model_checkpoint)

__all__ = [
    'CheckSegLabel', 'allowed_globals',
    'atomic_checkpoint_saving',
    'check_weights_fit', 'checkpoint_loading', 'degrade_sync_bn_on_cpu',
    'drop_closed_file_handlers', 'history_buffer_method',
    'insert_label_checks', 'is_trusted',
    'latest_checkpoint', 'load_local_checkpoint', 'load_model_checkpoint',
    'remove_partial_saves', 'replace_sync_bn', 'save_checkpoint_atomic',
    'setup_cpu_distributed', 'slurm_environment', 'trust'
]
