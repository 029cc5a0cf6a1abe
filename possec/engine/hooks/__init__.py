"""Every mmengine ``Hook`` of possec, one per module."""
from .checkpoint_provenance_hook import CheckpointProvenanceHook
from .fuse_conv_bn_hook import FuseConvBNHook
from .iter_times_hook import IterTimes
from .position_eraser_hook import PositionEraserHook
from .resume_rng_hook import ResumeRNGHook
from .run_summary_hook import RunSummaryHook
from .study_progress_hook import StudyProgressHook
from .validation_history_hook import ValidationHistoryHook
from .validation_rng_hook import ValidationRNGHook

__all__ = [
    'CheckpointProvenanceHook', 'FuseConvBNHook', 'IterTimes',
    'PositionEraserHook', 'ResumeRNGHook', 'RunSummaryHook',
    'StudyProgressHook',
    'ValidationHistoryHook', 'ValidationRNGHook'
]
