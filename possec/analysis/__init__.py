"""possec's analyses: the library code behind ``tools/analysis/``.

- :mod:`.probe`: the position probe (PosENet readout of a frozen encoder);
- :mod:`.study`: the position study (a grid of trainings and its report);
- :mod:`.fields`: what a unit sees (receptive fields, occlusion,
  deconvnet, invariance to translation, rotation and scaling);
- :mod:`.common`: what they share (config lookup, the offline model
  builder, images, figures, JSON, logging, command-line options).

:mod:`.fields` is not imported here: it loads Captum, which adds about two
seconds to the start of every tool that does not need it. The benchmarks
are a package of their own, :mod:`possec.benchmarks`.
"""
from . import common, probe, study
from .common import config_path, load_segmentor
from .probe import build_encoder, position_probe, run_probe
from .study import resolve_grid, run_study, write_report

__all__ = [
    'build_encoder', 'common', 'config_path', 'load_segmentor',
    'position_probe', 'probe', 'resolve_grid', 'run_probe', 'run_study',
    'study', 'write_report'
]
