"""mmseg's ResNet family with a switchable border rule (``padding_mode``)
and optional coordinate channels (``coord_conv``)."""
from typing import List, Tuple

import torch.nn as nn
from mmseg.models.backbones import ResNet, ResNetV1c, ResNetV1d
from mmseg.models.backbones.resnet import BasicBlock, Bottleneck
from mmseg.registry import MODELS
from torch import Tensor

from ..layers.coord_conv import CoordConv
from ..layers.full_conv import FullConv2d
from ..layers.padding import convert_padding, resolve_padding_mode
from ..layers.position_eraser import ERASE_MODES, PositionEraser

#: Where ``coord_conv`` appends coordinates.
COORD_CONV_MODES = ('none', 'stem', 'all')


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


def _chain_crop(convs: List[nn.Module], what: str) -> None:
    """Crop the last full conv of a chain of convs (some
    :class:`FullConv2d`) so that the chain ends at its 'same' size.

    Relative to 'same' padding, a full conv of padding P and stride s on a
    map grown by g gives a map grown by (g + P) / s (exactly, when s
    divides g + P). The last :class:`FullConv2d` cuts the total growth,
    half at the top (rounded down) and the rest at the bottom, likewise for
    columns; the convs after it must be pointwise (1x1, stride 1).
    """
    growth, last = [0, 0], None
    for conv in convs:
        if last is not None and not isinstance(conv, FullConv2d) and (
                tuple(conv.stride) != (1, 1) or any(conv.padding)):
            raise TypeError(
                f'padding_mode=\'full\' cannot crop {what}: a strided or '
                f'padded conv follows its last full conv')
        for axis in (0, 1):
            pad = conv.full_padding[axis] if isinstance(conv,
                                                        FullConv2d) else 0
            stride = conv.stride[axis]
            if (growth[axis] + pad) % stride:
                raise TypeError(
                    f'padding_mode=\'full\' cannot crop {what}: a growth of '
                    f'{growth[axis] + pad} pixels is not a multiple of the '
                    f'stride {stride}')
            growth[axis] = (growth[axis] + pad) // stride
        if isinstance(conv, FullConv2d):
            last = conv
    if last is not None:
        gh, gw = growth
        last.crop = (gh // 2, gh - gh // 2, gw // 2, gw - gw // 2)


def crop_full_blocks(backbone: nn.Module) -> None:
    """Crop the stem and every residual block of a ResNet whose convs are
    :class:`FullConv2d` back to the sizes of 'same' padding."""
    if getattr(backbone, 'deep_stem', False):
        _chain_crop([m for m in backbone.stem if isinstance(m, nn.Conv2d)],
                    'the stem')
    elif isinstance(getattr(backbone, 'conv1', None), nn.Conv2d):
        _chain_crop([backbone.conv1], 'the stem')
    for name, block in backbone.named_modules():
        if isinstance(block, (BasicBlock, Bottleneck)):
            convs = [getattr(block, c) for c in ('conv1', 'conv2', 'conv3')
                     if hasattr(block, c)]
            _chain_crop(convs, name)


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

    With ``padding_mode='full'`` (`Kayhan & van Gemert, CVPR 2020
    <https://arxiv.org/abs/2003.07064>`_) every padded conv is a full
    convolution (:class:`~possec.models.layers.FullConv2d`, zero padding
    ``dilation * (k - 1)``), so every input pixel meets every tap and maps
    grow inside a block. Letting them grow through the whole network would
    make the dilated stages (dilation 2 and 4 in a D8 ResNet) several times
    larger and the identity branches would need padding; instead the maps
    are cropped back at the end of each **residual block** (and of the
    stem), centred, to the size 'same' padding gives, by the block's last
    full conv, before its norm layer. Every output keeps the 'same' size and
    segmentors return full-size logits unchanged. Inside a block, the ring
    that a full conv adds around the map is computed from the real pixels
    and carried to the block's next conv instead of zeros (BasicBlock:
    conv1's ring feeds conv2; the 3-conv stem of ResNetV1c/V1d likewise),
    so BasicBlock networks (ResNet-18/34) differ from zero padding at the
    border pixels of every block. A block with one spatial conv (Bottleneck:
    1x1, kxk, 1x1, cropped at the kxk conv) or the 7x7 stem of ``ResNet``
    computes, at stride 1, exactly what zero padding computes: with those,
    'full' changes only the strided layers. A strided conv grows the map
    by an odd amount (1 for a 3x3/2 conv, 3 for the 7x7/2 stem), so its
    crop is off centre by one input pixel (the extra row and column are
    cut at the bottom and right). Max-pools keep ``-inf`` padding.

    The other modes keep every size. ``'reflect'`` needs each padded map to
    be larger than its padding (e.g. > 4 pixels at a dilation-4 stage).
    ResNetV1d's average-pool downsample (ceil mode, no padding) is left as
    it is in every mode.

    ``erase_position`` puts a :class:`~possec.models.layers.PositionEraser`
    on every output level: the per-pixel running mean of each channel over
    the training data is replaced by its average over the pixels
    (``'mean'``), and with ``'mean+scale'``
    the per-pixel spread is equalised too, so that a linear readout of the
    outputs (the position probe) cannot predict position better than a
    constant. The stages themselves are unchanged (each stage reads the
    previous stage's raw output); the erasers hold buffers only, start
    empty and are the identity until the first training batch, so standard
    checkpoints load (those keys are reported missing).

    ``coord_conv`` (`CoordConv, Liu et al., NeurIPS 2018
    <https://arxiv.org/abs/1807.03247>`_) gives the network the row and
    column of every pixel, e.g. to a network with circular padding that
    has no border to read position from: ``'stem'`` appends the two
    normalised coordinate channels to the input of the stem's first conv;
    ``'all'`` also adds them at the input of every stage (through a 1x1
    conv into the stage's input channels, added to the stage input, i.e.
    appended to the input of both branches of its first block). The
    coordinate weights are separate parameters (``coord_stem.conv.weight``,
    ``coord_stages.<i>.conv.weight``), zero at initialisation, so a
    standard checkpoint loads (those keys are reported missing) and the
    network then computes exactly what it did without coordinates.
    """

    def __init__(self,
                 *args,
                 padding_mode: str = 'zeros',
                 coord_conv: str = 'none',
                 erase_position: str = 'none',
                 **kwargs):
        mode = resolve_padding_mode(padding_mode)
        if coord_conv not in COORD_CONV_MODES:
            raise ValueError(f'unknown coord_conv {coord_conv!r}; expected '
                             f'one of '
                             f'{", ".join(map(repr, COORD_CONV_MODES))}')
        if erase_position != 'none' and erase_position not in ERASE_MODES:
            allowed = ', '.join(map(repr, ('none', ) + ERASE_MODES))
            raise ValueError(f'unknown erase_position {erase_position!r}; '
                             f'expected one of {allowed}')
        super().__init__(*args, **kwargs)
        self.padding_mode = mode
        self.erase_position = erase_position
        self.coord_conv = coord_conv
        # plain convs here; convert_padding below gives them the border rule
        if coord_conv != 'none':
            self.coord_stem = CoordConv(self._first_conv())
        if coord_conv == 'all':
            self.coord_stages = nn.ModuleList([
                CoordConv(nn.Conv2d(channels, channels, 1))
                for channels in self._stage_channels()
            ])
        if mode == 'none':
            crop_residuals(self)
        convert_padding(self, mode)
        if mode == 'full':
            crop_full_blocks(self)
            if coord_conv != 'none':
                self.coord_stem.conv.crop = self._first_conv().crop
        if erase_position != 'none':
            channels = self._out_channels()
            self.position_erasers = nn.ModuleList([
                PositionEraser(channels[i], erase=erase_position)
                for i in self.out_indices
            ])

    def _first_conv(self) -> nn.Module:
        return self.stem[0] if self.deep_stem else self.conv1

    def _stage_channels(self) -> List[int]:
        return [
            getattr(self, name)[0].conv1.in_channels
            for name in self.res_layers
        ]

    def _out_channels(self) -> List[int]:
        return [
            self.base_channels * 2**i * self.block.expansion
            for i in range(len(self.res_layers))
        ]

    def forward(self, x: Tensor) -> tuple:
        """The parent's forward, plus the coordinate terms of
        ``coord_conv`` and the erasers of ``erase_position``."""
        outs = self._forward_levels(x)
        if self.erase_position == 'none':
            return outs
        return tuple(
            eraser(out) for eraser, out in zip(self.position_erasers, outs))

    def _forward_levels(self, x: Tensor) -> tuple:
        if self.coord_conv == 'none':
            return super().forward(x)
        if self.deep_stem:
            x = self.stem[1:](self.stem[0](x) + self.coord_stem(x))
        else:
            x = self.relu(self.norm1(self.conv1(x) + self.coord_stem(x)))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            if self.coord_conv == 'all':
                x = x + self.coord_stages[i](x)
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

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
            (partial-convolution padding), ``'none'`` (valid convs; see
            :class:`PaddingModeMixin` for the output sizes) or ``'full'``
            (full convolutions, cropped per block to the 'same' sizes).
            Default: 'zeros'.
        coord_conv (str): ``'none'``, ``'stem'`` or ``'all'``: where
            CoordConv coordinate channels are appended (see
            :class:`PaddingModeMixin`). Default: 'none'.
        erase_position (str): ``'none'``, ``'mean'`` or ``'mean+scale'``:
            a :class:`~possec.models.layers.PositionEraser` on every output
            level (see :class:`PaddingModeMixin`). Default: 'none'.
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
