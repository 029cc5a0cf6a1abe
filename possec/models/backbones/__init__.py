from .padding_resnet import (PaddingModeMixin, PadResNet, PadResNetV1c,
                             PadResNetV1d)
from .vgg import PadVGG

__all__ = ['PadResNet', 'PadResNetV1c', 'PadResNetV1d', 'PadVGG',
           'PaddingModeMixin']
