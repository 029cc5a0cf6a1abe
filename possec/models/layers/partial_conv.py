"""Convolution with partial-convolution padding."""
from collections import OrderedDict
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .conv_copy import conv_sharing_params


class PartialConv2d(nn.Conv2d):
    """2D convolution whose zero padding is re-weighted as in partial conv.

    Implements the padding of `Partial Convolution based Padding
    <https://arxiv.org/abs/1811.11718>`_ (Liu et al. 2018): the input is
    zero-padded and convolved without bias, each output is multiplied by
    ``k_h * k_w / n`` where ``n`` is the number of real (non-padding) input
    pixels under the kernel window, and the bias is added afterwards. Away
    from the border ``n = k_h * k_w`` and the layer equals ``nn.Conv2d``.
    The re-weighting restores the mass the zero padding removed: on a
    constant image the border equals the interior exactly when each kernel
    is constant over its taps; for a general kernel only approximately.

    ``n`` depends only on the input's height and width (the valid region is
    the whole image rectangle), so it is computed once per ``(height, width,
    device, dtype)`` by convolving a ones image with a ones kernel of the same
    size, stride, dilation and padding, and cached (not a buffer: the state
    dict holds ``weight`` and ``bias`` only, exactly as ``nn.Conv2d``). A
    window that holds no real pixel (only possible when padding exceeds the
    dilated kernel's reach) gives ``n`` clamped to 1, i.e. an output equal to
    the bias.

    Args:
        *args: Positional arguments of ``nn.Conv2d``.
        **kwargs: Keyword arguments of ``nn.Conv2d``; ``padding_mode`` must
            be ``'zeros'`` (the default).

    Example:
        >>> import torch
        >>> conv = PartialConv2d(1, 1, 3, padding=1, bias=False)
        >>> _ = torch.nn.init.constant_(conv.weight, 1.)
        >>> out = conv(torch.ones(1, 1, 4, 4))  # border == interior
        >>> bool((out == 9).all())
        True
    """

    max_cached_shapes = 8

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != 'zeros':
            raise ValueError(
                f'PartialConv2d pads with zeros before re-weighting; got '
                f'padding_mode={self.padding_mode!r}, expected \'zeros\'')
        self._scale_cache: 'OrderedDict[tuple, Tensor]' = OrderedDict()

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> 'PartialConv2d':
        """Build a partial conv that shares ``conv``'s weight and bias.

        The parameters are the same objects, so ``requires_grad`` flags,
        optimiser references and state dict keys are unchanged.
        """
        return conv_sharing_params(cls, conv)

    def border_scale(self, height: int, width: int, device: torch.device,
                     dtype: torch.dtype) -> Tensor:
        """Return ``k_h * k_w / n`` of shape (1, 1, H_out, W_out), cached."""
        key = (height, width, device, dtype)
        scale = self._scale_cache.get(key)
        if scale is None:
            with torch.no_grad():
                ones = torch.ones(1, 1, height, width, device=device,
                                  dtype=dtype)
                kernel = torch.ones(1, 1, *self.kernel_size, device=device,
                                    dtype=dtype)
                count = F.conv2d(ones, kernel, None, self.stride,
                                 self.padding, self.dilation)
                area = self.kernel_size[0] * self.kernel_size[1]
                scale = area / count.clamp(min=1)
            self._scale_cache[key] = scale
            while len(self._scale_cache) > self.max_cached_shapes:
                self._scale_cache.popitem(last=False)
        return scale

    def forward(self, x: Tensor) -> Tensor:
        """Zero-padded convolution, re-weighted at the border, plus bias."""
        out = self._conv_forward(x, self.weight, None)
        scale = self.border_scale(x.shape[-2], x.shape[-1], x.device, x.dtype)
        if self.bias is None:
            return out * scale
        return torch.addcmul(self.bias.view(1, -1, 1, 1), out, scale)

    def extra_repr(self) -> str:
        return super().extra_repr() + ', padding_mode=partial'

    @property
    def cached_shapes(self) -> Tuple[tuple, ...]:
        """Keys ``(height, width, device, dtype)`` of the cached scales."""
        return tuple(self._scale_cache)
