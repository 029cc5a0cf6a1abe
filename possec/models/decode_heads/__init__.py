from .parsenet_head import ParseNetHead
from .posenet_head import PosENetHead

__all__ = ['ParseNetHead', 'PosENetHead']
