"""The study's former grid module, kept for code that imports its names.

The design now lives in :mod:`.design` (factors, cells, contrasts,
doses), :mod:`.settings` (:class:`~.settings.StudySettings`),
:mod:`.selection` (the cells of a command line) and :mod:`.builder` (a
cell's config overrides); new code imports from those.
"""
from typing import Optional, Union

from . import builder
from .builder import HEAD_CONFIGS, POS_HEADS, head_config, split_border
from .design import (BORDERS, CONTRASTS, HEADS, POSITION, SEEDS,
                     STUDY_LAYOUTS, Cell, StudyError, variant_name)
from .selection import QUICK, resolve_grid
from .settings import OPTIMIZERS, RUNTIME_FIELDS, StudySettings

#: The default settings as a plain dict.
DEFAULT_SETTINGS = StudySettings().as_dict()
RUNTIME_SETTINGS = RUNTIME_FIELDS
_heads = builder.read_heads


def cell_options(cell: Cell, settings: Union[dict, StudySettings],
                 work_dir: str, results_file: Optional[str] = None,
                 **kwargs) -> dict:
    """:func:`.builder.cell_options`, taking the settings as a dict too."""
    if not isinstance(settings, StudySettings):
        settings = StudySettings.from_dict(settings)
    return builder.cell_options(cell, settings, work_dir, results_file,
                                **kwargs)


__all__ = [
    'BORDERS', 'CONTRASTS', 'DEFAULT_SETTINGS', 'HEAD_CONFIGS', 'HEADS',
    'OPTIMIZERS', 'POSITION', 'POS_HEADS', 'QUICK', 'RUNTIME_SETTINGS',
    'SEEDS', 'STUDY_LAYOUTS', 'Cell', 'StudyError', 'cell_options',
    'head_config', 'resolve_grid', 'split_border', 'variant_name'
]
