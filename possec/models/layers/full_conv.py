"""Full convolution: every input pixel meets every tap of the kernel."""
from typing import Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from .conv_copy import conv_sharing_params


class FullConv2d(nn.Conv2d):
    """``nn.Conv2d`` that zero-pads ``dilation * (kernel_size - 1)`` on each
    side (a *full* convolution), then optionally crops its output.

    `On Translation Invariance in CNNs: Convolutional Layers can Exploit
    Absolute Spatial Location <https://arxiv.org/abs/2003.07064>`_ (Kayhan &
    van Gemert, CVPR 2020): with 'same' padding a border pixel is seen by
    fewer kernel taps than an interior one, which lets a CNN tell where the
    border is; a full convolution applies every tap to every input pixel,
    so a stride-1 map grows by ``dilation * (kernel_size - 1)`` per axis.
    ``crop`` (top, bottom, left, right) cuts rows and columns off the
    output, so a block of full convolutions can end at its 'same' size (see
    :class:`~possec.models.backbones.PaddingModeMixin`). The constructor's
    ``padding`` is ignored for the computation (the full padding is used)
    but kept, so the layer's geometry stays readable; the state dict is
    ``nn.Conv2d``'s.

    Args:
        *args: Positional arguments of ``nn.Conv2d``.
        crop (Sequence[int]): Output rows/columns cut at the top, bottom,
            left and right. Default: (0, 0, 0, 0).
        **kwargs: Keyword arguments of ``nn.Conv2d`` (``padding_mode`` must
            be ``'zeros'``).
    """

    def __init__(self, *args, crop: Sequence[int] = (0, 0, 0, 0), **kwargs):
        if kwargs.get('padding_mode', 'zeros') != 'zeros':
            raise ValueError(f'FullConv2d pads with zeros; got padding_mode='
                             f'{kwargs["padding_mode"]!r}')
        super().__init__(*args, **kwargs)
        self.crop = tuple(int(c) for c in crop)
        if len(self.crop) != 4 or min(self.crop) < 0:
            raise ValueError(f'crop must be four non-negative ints (top, '
                             f'bottom, left, right), got {crop!r}')

    @property
    def full_padding(self) -> Tuple[int, int]:
        """``dilation * (kernel_size - 1)`` per axis."""
        return tuple(d * (k - 1)
                     for d, k in zip(self.dilation, self.kernel_size))

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> 'FullConv2d':
        """Build one that shares ``conv``'s weight and bias."""
        if isinstance(conv.padding, str):
            raise TypeError(f'FullConv2d needs numeric padding, got '
                            f'{conv.padding!r}')
        return conv_sharing_params(cls, conv)

    def _conv_forward(self, x: Tensor, weight: Tensor, bias) -> Tensor:
        out = F.conv2d(x, weight, bias, self.stride, self.full_padding,
                       self.dilation, self.groups)
        top, bottom, left, right = self.crop
        if any(self.crop):
            h, w = out.shape[-2:]
            out = out[..., top:h - bottom, left:w - right]
        return out

    def extra_repr(self) -> str:
        return super().extra_repr() + f', full, crop={self.crop}'
