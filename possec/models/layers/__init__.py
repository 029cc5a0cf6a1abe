from .circular_pad import CircularConv2d, circular_pad
from .coord_conv import CoordConv, coord_channels
from .full_conv import FullConv2d
from .grad_scale import GradScale, scale_grad
from .l2norm import L2Norm
from .padding import (PADDING_MODES, PaddedMaxPool2d, convert_padding,
                      resolve_padding_mode)
from .partial_conv import PartialConv2d
from .position_eraser import ERASE_MODES, PositionEraser
from .resize import bilinear_resize, interp_matrix

__all__ = ['GradScale', 'L2Norm', 'PADDING_MODES', 'PaddedMaxPool2d',
           'PartialConv2d', 'convert_padding', 'resolve_padding_mode',
           'scale_grad', 'CircularConv2d', 'circular_pad', 'bilinear_resize',
           'interp_matrix', 'CoordConv', 'FullConv2d', 'coord_channels',
           'ERASE_MODES', 'PositionEraser']
