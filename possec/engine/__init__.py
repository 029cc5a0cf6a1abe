"""The engine layer: the hooks that possec adds to mmengine's Runner.

Importing this package (``import possec`` does) only registers the hooks
into mmseg's ``HOOKS`` registry, as mmseg's own ``mmseg.engine`` does; it
changes no other global state. A config adds one by its registered name,
e.g. ``custom_hooks = [dict(type='PositionEraserHook')]``.
"""
from .hooks import (CheckpointProvenanceHook, FuseConvBNHook, IterTimes,
                    PositionEraserHook, RunSummaryHook, StudyProgressHook)

__all__ = [
    'CheckpointProvenanceHook', 'FuseConvBNHook', 'IterTimes',
    'PositionEraserHook', 'RunSummaryHook', 'StudyProgressHook'
]
