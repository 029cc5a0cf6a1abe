"""mmseg's ResNet family with a switchable border rule (``padding_mode``)."""
from typing import Tuple

import torch.nn as nn
from mmseg.models.backbones import ResNet, ResNetV1c, ResNetV1d
from mmseg.models.backbones.resnet import BasicBlock, Bottleneck
from mmseg.registry import MODELS
from torch import Tensor

from ..layers.padding import convert_padding, resolve_padding_mode


class IdentityCrop(nn.Sequential):
    """Crop a residual block's input, then run its downsample layers.

    Used with ``padding_mode='none'``: the block's conv branch shrinks, so its
    identity branch is cut to the same pixels. The crop is taken on the block
    *input*, before the (strided) downsample, by the margin the conv branch
    loses there; sizes then match exactly and every output pixel adds the
    input pixel at the centre of its receptive field. The downsample layers
    stay children at their original indices, so state dict keys do not move
    (``downsample.0.weight`` ...).

    Args:
        margin (tuple[int]): Rows and columns cut on each side.
        *layers (nn.Module): The block's downsample layers (maybe none).
    """

    def __init__(self, margin: Tuple[int, int], *layers: nn.Module):
        super().__init__(*layers)
        self.margin = tuple(margin)

    def forward(self, x: Tensor) -> Tensor:
        mh, mw = self.margin
        x = x[..., mh:x.shape[-2] - mh, mw:x.shape[-1] - mw]
        return super().forward(x)

    def extra_repr(self) -> str:
        return f'margin={self.margin}'


def _block_margin(block: nn.Module) -> Tuple[int, int]:
    """Margin (input pixels per side) the padded conv branch would lose."""
    convs = [getattr(block, name) for name in ('conv1', 'conv2', 'conv3')
             if hasattr(block, name)]
    margin, stride = [0, 0], [1, 1]
    for conv in convs:
        for axis in (0, 1):
            margin[axis] += conv.padding[axis] * stride[axis]
            stride[axis] *= conv.stride[axis]
    return tuple(margin)


def crop_residuals(backbone: nn.Module) -> None:
    """Give every residual block of ``backbone`` an :class:`IdentityCrop`.

    Must run while the convs still hold their original padding.
    """
    for name, block in backbone.named_modules():
        if not isinstance(block, (BasicBlock, Bottleneck)):
            continue
        downsample = block.downsample
        if downsample is None:
            block.downsample = IdentityCrop(_block_margin(block))
        elif type(downsample) is nn.Sequential:
            block.downsample = IdentityCrop(_block_margin(block), *downsample)
        else:
            raise TypeError(
                f'padding_mode=\'none\' needs the downsample of {name} to be '
                f'None or an nn.Sequential, got {type(downsample).__name__}')


class PaddingModeMixin:
    """Adds ``padding_mode`` to a ResNet: the parent builds, then the padded
    operations are switched (:func:`possec.models.layers.convert_padding`).

    With ``padding_mode='none'`` every conv and the stem's max-pool are valid
    (unpadded), so features shrink. Per spatial axis, with ``⌊⌋`` the floor,
    a conv (kernel k, stride s, dilation d) maps ``H -> ⌊(H - d(k-1) - 1)/s⌋
    + 1`` and the sizes are:

    - stem, ResNet (7x7/2 conv): ``⌊(H - 7)/2⌋ + 1``; stem, ResNetV1c/V1d
      (3x3/2, 3x3, 3x3 convs): ``⌊(H - 3)/2⌋ + 1 - 4``; then the 3x3/2
      max-pool: ``⌊(H - 3)/2⌋ + 1``.
    - a stage of stride s whose blocks have dilations d_1 ... d_n (d_1 is
      ``dilation // 2`` with ``contract_dilation``, or from ``multi_grid``):

      - Bottleneck, style 'pytorch': ``⌊(H - 2 d_1 - 1)/s⌋ + 1 - 2
        Σ_{j>=2} d_j``; style 'caffe': ``⌊(H - 1)/s⌋ + 1 - 2 Σ_j d_j``.
      - BasicBlock: ``⌊(H - 2 d_1 - 1)/s⌋ + 1 - 2 - Σ_{j>=2} (2 d_j + 2)``.

    The identity branches are cropped to match (:class:`IdentityCrop`).
    A segmentor still returns full-size logits: mmseg's ``EncoderDecoder``
    resizes the logits to the input in ``predict`` and the decode heads
    resize them to the labels in ``loss``.

    The other modes keep every size. ``'reflect'`` needs each padded map to
    be larger than its padding (e.g. > 4 pixels at a dilation-4 stage).
    ResNetV1d's average-pool downsample (ceil mode, no padding) is left as
    it is in every mode.
    """

    def __init__(self, *args, padding_mode: str = 'zeros', **kwargs):
        mode = resolve_padding_mode(padding_mode)
        super().__init__(*args, **kwargs)
        self.padding_mode = mode
        if mode == 'none':
            crop_residuals(self)
        convert_padding(self, mode)

    def train(self, mode: bool = True):
        """The parent's ``train``, returning ``self`` (mmseg's returns
        None, which breaks ``model.eval()(x)``)."""
        super().train(mode)
        return self


@MODELS.register_module()
class PadResNet(PaddingModeMixin, ResNet):
    """mmseg's :class:`~mmseg.models.backbones.ResNet` with ``padding_mode``.

    The padding rule is the independent variable of `Position, Padding and
    Predictions <https://arxiv.org/abs/2101.12322>`_. State dicts equal the
    parent's in keys and shapes, so its checkpoints load in every mode.

    Args:
        padding_mode (str): Border rule of every padded conv and of the
            stem's max-pool: ``'zeros'`` (the parent unchanged),
            ``'reflect'``, ``'replicate'``, ``'circular'``, ``'partial'``
            (partial-convolution padding) or ``'none'`` (valid convs; see
            :class:`PaddingModeMixin` for the output sizes).
            Default: 'zeros'.
        **kwargs: Arguments of mmseg's ``ResNet``.

    Example:
        >>> import torch
        >>> self = PadResNet(depth=18, padding_mode='none')
        >>> outs = self.eval()(torch.rand(1, 3, 480, 480))
        >>> [tuple(o.shape[2:]) for o in outs]
        [(110, 110), (48, 48), (17, 17), (2, 2)]
    """


@MODELS.register_module()
class PadResNetV1c(PaddingModeMixin, ResNetV1c):
    """mmseg's :class:`~mmseg.models.backbones.ResNetV1c` with
    ``padding_mode``.

    Args:
        padding_mode (str): As in :class:`PadResNet`. Default: 'zeros'.
        **kwargs: Arguments of mmseg's ``ResNetV1c``.

    Example:
        >>> import torch
        >>> self = PadResNetV1c(depth=18, padding_mode='circular',
        ...                     strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
        >>> outs = self.eval()(torch.rand(1, 3, 64, 64))
        >>> [tuple(o.shape[1:]) for o in outs]
        [(64, 16, 16), (128, 8, 8), (256, 8, 8), (512, 8, 8)]
    """


@MODELS.register_module()
class PadResNetV1d(PaddingModeMixin, ResNetV1d):
    """mmseg's :class:`~mmseg.models.backbones.ResNetV1d` with
    ``padding_mode``.

    Args:
        padding_mode (str): As in :class:`PadResNet`. Default: 'zeros'.
        **kwargs: Arguments of mmseg's ``ResNetV1d``.
    """
