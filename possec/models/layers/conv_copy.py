"""Build a convolution subclass that shares an existing conv's parameters."""
from typing import Type, TypeVar

from torch import nn

ConvT = TypeVar('ConvT', bound=nn.Conv2d)


def conv_sharing_params(cls: Type[ConvT], conv: nn.Conv2d) -> ConvT:
    """A ``cls`` with ``conv``'s geometry and the same weight and bias.

    The parameters are the same objects, so ``requires_grad`` flags,
    optimiser references and state dict keys are unchanged. ``cls`` must
    take ``nn.Conv2d``'s constructor arguments (padding mode excepted).
    """
    new = cls(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        device='meta')
    new.weight = conv.weight
    new.bias = conv.bias
    new.train(conv.training)
    return new
