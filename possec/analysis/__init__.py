from .deconvnet import deconvnet, project, run_deconvnet
from .invariance import feature_change, run_invariance
from .occlusion import occlusion, occlusion_map, run_occlusion
from .receptive_field import change_map, receptive_field, run_receptive_field
from .probe import (cached_features, extract, make_readout, predict_readout,
                    train_readout)
from .probe_data import ProbeError, load_images, split_indices
from .probe_encoders import FrozenEncoder, build_encoder
from .probe_report import write_results
from .probe_run import ABLATIONS, position_probe, run_probe
from .probe_score import score
from .study import run_cell, run_study
from .study_grid import Cell, StudyError, build_grid, resolve_grid
from .study_report import write_report as write_study_report
from .theoretical_field import Field, theoretical_field
from .vis_common import load_segmentor

__all__ = [
    'ABLATIONS', 'FrozenEncoder', 'ProbeError', 'build_encoder',
    'cached_features', 'extract', 'load_images', 'make_readout',
    'position_probe', 'predict_readout', 'run_probe', 'score',
    'split_indices', 'train_readout', 'write_results'
]

__all__ += [
    'Field', 'change_map', 'deconvnet', 'feature_change', 'load_segmentor',
    'occlusion', 'occlusion_map', 'project', 'receptive_field',
    'run_deconvnet', 'run_invariance', 'run_occlusion',
    'run_receptive_field', 'theoretical_field'
]

__all__ += [
    'Cell', 'StudyError', 'build_grid', 'resolve_grid', 'run_cell',
    'run_study', 'write_study_report'
]
