"""Border rules for convolutions and pools: one switch, ``padding_mode``.

Zero padding lets a CNN tell where the image border is, and from there where
it is in absolute terms (`Position, Padding and Predictions: A Deeper Look at
Position Information in CNNs <https://arxiv.org/abs/2101.12322>`_). This
module re-wires the padded operations of an existing module tree to another
border rule without touching its parameters, so state dicts keep their keys
and shapes and standard checkpoints load in every mode.
"""
from typing import Tuple

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .circular_pad import CircularConv2d, circular_pad
from .full_conv import FullConv2d
from .partial_conv import PartialConv2d

PADDING_MODES = ('zeros', 'reflect', 'replicate', 'circular', 'partial',
                 'none', 'full')
_TORCH_PAD_MODES = ('reflect', 'replicate', 'circular')


def resolve_padding_mode(mode: str) -> str:
    """Check a ``padding_mode`` string and return it.

    Args:
        mode (str): One of ``'zeros'``, ``'reflect'``, ``'replicate'``,
            ``'circular'``, ``'partial'``, ``'none'`` or ``'full'``.

    Returns:
        str: ``mode`` itself.

    Raises:
        ValueError: ``mode`` is not one of the above.
    """
    if not isinstance(mode, str) or mode not in PADDING_MODES:
        raise ValueError(f'unknown padding_mode {mode!r}; expected one of '
                         f'{", ".join(repr(m) for m in PADDING_MODES)}')
    return mode


def _pair(value) -> Tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _has_padding(padding) -> bool:
    if isinstance(padding, str):  # nn.Conv2d accepts 'same' and 'valid'
        return padding != 'valid'
    return any(p != 0 for p in _pair(padding))


class PaddedMaxPool2d(nn.MaxPool2d):
    """Max-pool that pads explicitly with a border rule, then pools unpadded.

    ``nn.MaxPool2d`` pads with ``-inf`` (the border is ignored); this layer
    pads with ``F.pad(mode=pad_mode)`` (``'circular'``: :func:`circular_pad`)
    instead, so that e.g. circular padding also wraps around in the pools.

    Args:
        kernel_size (int | tuple[int]): Pooling window.
        stride (int | tuple[int]): Pooling stride.
        pad (int | tuple[int]): Padding (height, width) added on each side.
        pad_mode (str): ``'reflect'``, ``'replicate'`` or ``'circular'``.
        dilation (int | tuple[int]): Window dilation. Default: 1.
        ceil_mode (bool): As in ``nn.MaxPool2d``. Default: False.
    """

    def __init__(self, kernel_size, stride, pad, pad_mode: str,
                 dilation=1, ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding=0, dilation=dilation,
                         ceil_mode=ceil_mode)
        if pad_mode not in _TORCH_PAD_MODES:
            raise ValueError(f'unknown pad_mode {pad_mode!r}; expected one '
                             f'of {_TORCH_PAD_MODES}')
        self.pad = _pair(pad)
        self.pad_mode = pad_mode

    def forward(self, x: Tensor) -> Tensor:
        ph, pw = self.pad
        if self.pad_mode == 'circular':
            x = circular_pad(x, ph, pw)
        else:
            x = F.pad(x, (pw, pw, ph, ph), mode=self.pad_mode)
        return F.max_pool2d(x, self.kernel_size, self.stride, 0,
                            self.dilation, self.ceil_mode)

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', pad={self.pad}, pad_mode={self.pad_mode}')


def _convert_conv(conv: nn.Conv2d, mode: str) -> nn.Module:
    if mode == 'circular' and not isinstance(conv.padding, str):
        return CircularConv2d.from_conv(conv)
    if mode in _TORCH_PAD_MODES:
        # nn.Conv2d pads by ``_reversed_padding_repeated_twice`` (derived
        # from ``padding`` at construction) whenever padding_mode != 'zeros'
        conv.padding_mode = mode
        return conv
    if mode == 'partial':
        return PartialConv2d.from_conv(conv)
    if mode == 'full':
        return FullConv2d.from_conv(conv)
    # 'none': valid convolution
    conv.padding = (0, 0)
    conv._reversed_padding_repeated_twice = [0, 0, 0, 0]
    conv.padding_mode = 'zeros'
    return conv


def _convert_max_pool(pool: nn.MaxPool2d, mode: str) -> nn.Module:
    if mode in _TORCH_PAD_MODES:
        return PaddedMaxPool2d(pool.kernel_size, pool.stride, pool.padding,
                               mode, pool.dilation, pool.ceil_mode)
    if mode == 'none':
        pool.padding = 0
    # 'partial', 'full': -inf padding already takes the max over real pixels only
    return pool


def convert_padding(module: nn.Module, mode: str) -> nn.Module:
    """Switch every padded conv and max-pool of a module tree to ``mode``.

    The conversion is in place (children are replaced on their parents) and
    keeps every parameter object, so state dict keys, shapes and
    ``requires_grad`` flags are unchanged. Only operations with non-zero
    padding are touched; the padding *amount* is kept (``dilation * (k - 1)
    / 2`` for mmseg's dilated convs), only the rule that fills it changes:

    - ``'zeros'``: nothing changes. Max-pools keep PyTorch's ``-inf``
      padding, which ignores the border; after a ReLU it gives the same
      result as zero padding, so ``'zeros'`` stays bit-identical to the
      unconverted network.
    - ``'reflect'``, ``'replicate'``: convs use ``nn.Conv2d``'s native
      ``padding_mode``; max-pools become :class:`PaddedMaxPool2d` with the
      same rule.
    - ``'circular'``: the same, but convs become :class:`CircularConv2d`
      (``nn.Conv2d`` with ``padding_mode='circular'`` whose padding has a
      cheaper backward pass, see :mod:`.circular_pad`).
    - ``'partial'``: convs become :class:`PartialConv2d`; max-pools keep
      ``-inf`` padding (a max over the real pixels only, which is what
      partial padding means for a max).
    - ``'none'``: padding 0 everywhere, so features shrink by ``dilation *
      (k - 1)`` per conv; residual additions need their own cropping (see
      :mod:`possec.models.backbones.padding_resnet`).
    - ``'full'``: convs become :class:`FullConv2d` (zero padding of
      ``dilation * (k - 1)``: every input pixel meets every tap), so
      features *grow* by ``dilation * (k - 1)`` per stride-1 conv;
      max-pools keep ``-inf`` padding (a max does not weigh the border).
      ResNet backbones crop each block back to its 'same' size (see
      :class:`possec.models.backbones.PaddingModeMixin`).

    Args:
        module (nn.Module): Root of the tree; converted in place.
        mode (str): One of :data:`PADDING_MODES`.

    Returns:
        nn.Module: ``module``, or its replacement if ``module`` itself was a
        converted leaf.

    Raises:
        ValueError: Unknown ``mode``.
        TypeError: A padded layer this function cannot convert faithfully
            (a subclass of ``nn.Conv2d``/``nn.MaxPool2d`` with its own
            forward, or a padded average pool) and ``mode`` is not 'zeros'.
    """
    mode = resolve_padding_mode(mode)
    if mode == 'zeros':
        return module
    return _convert_tree(module, mode, prefix='')


def _convert_tree(module: nn.Module, mode: str, prefix: str) -> nn.Module:
    new = _convert_leaf(module, mode, prefix)
    if new is not module:
        return new
    for name, child in list(module.named_children()):
        converted = _convert_tree(child, mode, f'{prefix}{name}.')
        if converted is not child:
            setattr(module, name, converted)
    return module


def _convert_leaf(module: nn.Module, mode: str, prefix: str) -> nn.Module:
    padding = getattr(module, 'padding', 0)
    if isinstance(module, nn.modules.conv._ConvNd) or isinstance(
            module, (nn.MaxPool2d, nn.AvgPool2d)):
        if not _has_padding(padding):
            return module
        if type(module) is nn.Conv2d:
            return _convert_conv(module, mode)
        if type(module) is nn.MaxPool2d:
            return _convert_max_pool(module, mode)
        raise TypeError(
            f'cannot switch {prefix.rstrip(".") or "the module"} '
            f'({type(module).__name__}, padding={padding}) to padding_mode '
            f'{mode!r}: only plain nn.Conv2d and nn.MaxPool2d are '
            f'converted; give it padding 0 or convert it yourself')
    return module
