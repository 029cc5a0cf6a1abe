"""The position study: a grid of short trainings on the synthetic layouts
(padding x position head x decode head x seed), each evaluated by border
distance and probed for position, aggregated over seeds into a report."""
from .aggregate import contrasts, group, mean_sd, variant_name
from .cells import run_cell, run_study
from .grid import (HEAD_CONFIGS, HEADS, POS_HEADS, QUICK, Cell, StudyError,
                   build_grid, resolve_grid)
from .report import write_report

__all__ = [
    'Cell', 'HEAD_CONFIGS', 'HEADS', 'POS_HEADS', 'QUICK', 'StudyError',
    'build_grid', 'contrasts', 'group', 'mean_sd', 'resolve_grid', 'run_cell',
    'run_study', 'variant_name', 'write_report'
]
