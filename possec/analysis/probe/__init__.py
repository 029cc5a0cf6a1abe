"""The position probe of `How Much Position Information Do Convolutional
Neural Networks Encode? <https://arxiv.org/abs/2001.08248>`_: a frozen
encoder's features, cached once, read out by a PosENet head per position
pattern, scored by SPC and MAE."""
from .cache import FeatureCache, extract_features
from .data import ProbeError, probe_images, split_indices
from .encoders import FrozenEncoder, build_encoder
from .readout import (baseline_loss, cached_features, extract, make_readout,
                      predict_readout, readout_side, train_readout)
from .report import format_table, write_results
from .run import ABLATIONS, position_probe, run_probe
from .score import score

__all__ = [
    'ABLATIONS', 'FeatureCache', 'FrozenEncoder', 'ProbeError',
    'baseline_loss', 'build_encoder', 'cached_features', 'extract',
    'extract_features', 'format_table', 'make_readout', 'position_probe',
    'predict_readout', 'probe_images', 'readout_side', 'run_probe', 'score',
    'split_indices', 'train_readout', 'write_results'
]
