"""What a unit of a segmentor sees: theoretical and empirical receptive
fields, occlusion sensitivity and deconvnet projections (Zeiler and
Fergus), and the change of features under translation, rotation and
scaling per border rule."""
from .deconvnet import deconvnet, layer_fn, project, run_deconvnet
from .invariance import feature_change, run_invariance
from .occlusion import FlushOcclusion, occlusion, occlusion_map, run_occlusion
from .receptive import (change_map, patch_grid, receptive_field,
                        run_receptive_field)
from .segmentor import prepare
from .theoretical import Field, theoretical_field

__all__ = [
    'Field', 'FlushOcclusion', 'change_map', 'deconvnet', 'feature_change',
    'layer_fn', 'occlusion', 'occlusion_map', 'patch_grid', 'prepare',
    'project', 'receptive_field', 'run_deconvnet', 'run_invariance',
    'run_occlusion', 'run_receptive_field', 'theoretical_field'
]
