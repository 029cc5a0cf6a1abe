from .probe import (cached_features, extract, make_readout, predict_readout,
                    train_readout)
from .probe_data import ProbeError, load_images, split_indices
from .probe_encoders import FrozenEncoder, build_encoder
from .probe_report import write_results
from .probe_run import ABLATIONS, position_probe, run_probe
from .probe_score import score

__all__ = [
    'ABLATIONS', 'FrozenEncoder', 'ProbeError', 'build_encoder',
    'cached_features', 'extract', 'load_images', 'make_readout',
    'position_probe', 'predict_readout', 'run_probe', 'score',
    'split_indices', 'train_readout', 'write_results'
]
