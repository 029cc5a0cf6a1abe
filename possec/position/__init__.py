from .metrics import (average_ranks, mae, mae_per_image, position_metrics, spc,
                      spc_per_image)
from .targets import PATTERNS, check_patterns, position_map, position_maps

__all__ = [
    'PATTERNS', 'average_ranks', 'check_patterns', 'mae', 'mae_per_image',
    'position_map', 'position_maps', 'position_metrics', 'spc',
    'spc_per_image'
]
