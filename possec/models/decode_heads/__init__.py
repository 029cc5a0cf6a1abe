from .padded_fcn_head import PadFCNHead
from .parsenet_head import ParseNetHead
from .pos_confusion_head import PosConfusionHead
from .posenet_head import PosENetHead

__all__ = ['PadFCNHead', 'ParseNetHead', 'PosConfusionHead', 'PosENetHead']
