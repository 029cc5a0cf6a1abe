"""The position study: contrasts of short trainings on the synthetic
layouts (border rule x position mechanism x decode head on dose-response
data, training seeds crossed with data seeds), each validated by border
distance, tested for convergence and probed for position, aggregated into
a report with its statistics."""
from .aggregate import contrasts, group, mean_sd
from .builder import HEAD_CONFIGS, POS_HEADS, cell_options
from .cells import run_cell
from .design import CONTRASTS, HEADS, Cell, design_cells, variant_name
from .report import write_report
from .run import run_study
from .selection import QUICK, resolve_grid
from .settings import StudyError, StudySettings

__all__ = [
    'CONTRASTS', 'Cell', 'HEAD_CONFIGS', 'HEADS', 'POS_HEADS', 'QUICK',
    'StudyError', 'StudySettings', 'cell_options', 'contrasts',
    'design_cells', 'group', 'mean_sd', 'resolve_grid', 'run_cell',
    'run_study', 'variant_name', 'write_report'
]
