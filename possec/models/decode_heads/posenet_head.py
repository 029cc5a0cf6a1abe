"""PosENet position head: read absolute position out of backbone features."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor, nn

from ...position import PATTERNS, check_patterns, position_maps
from ...position.metrics import position_metrics
from ..layers.grad_scale import scale_grad
from ..layers.resize import bilinear_resize, resize_conv2d


#: The head's losses (``loss_type``).
LOSS_TYPES = ('bce', 'mse')


def _pair(grid_size) -> Tuple[int, int]:
    size = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(
        grid_size)
    if len(size) != 2 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0
            for s in size):
        raise ValueError(f'grid_size must be a positive int or a pair of '
                         f'positive ints (h, w), got {grid_size!r}')
    return size


@MODELS.register_module()
class PosENetHead(BaseDecodeHead):
    """Position head of PosENet, as an mmseg auxiliary head.

    This head is the position encoding module of `How Much Position
    Information Do Convolutional Neural Networks Encode?
    <https://arxiv.org/abs/2001.08248>`_. The levels ``in_index`` of the
    backbone are each resized (bilinear) to ``grid_size``, concatenated,
    and passed through ``num_convs`` ``kernel_size`` x ``kernel_size``
    convolutions (conv, ``norm_cfg``, ``act_cfg`` between them; the last one
    outputs one channel per pattern) and a sigmoid. The loss compares the
    output with the ground-truth maps of :mod:`possec.position.targets`,
    generated at the head's output size (so the head needs no segmentation
    labels): binary cross-entropy against the soft maps by default, or the
    paper's mean squared error (``loss_type='mse'``). It is not a classifier:
    ``num_classes`` is fixed to the number of patterns and ``conv_seg`` is
    the last convolution.

    ``grad_scale`` decides what the head does to the backbone: ``1.0`` is an
    ordinary auxiliary task (the backbone is encouraged to encode position),
    ``0.0`` a probe (the features are detached: the head measures and
    changes nothing), a negative value gradient reversal (`Ganin &
    Lempitsky, 2015 <https://arxiv.org/abs/1409.7495>`_: the head learns to
    read position, and the backbone is pushed to make it wrong). Gradient
    reversal against this head does **not** remove position: it was
    measured to add it, at a cost in mIoU (``docs/removal.md``,
    "Gradient reversal adds position"). The ways possec offers to
    remove position (the backbones' ``erase_position`` option,
    :class:`~possec.models.decode_heads.PosConfusionHead`,
    :class:`~possec.models.segmentors.ShiftConsistencyEncoderDecoder`) and
    what each was measured to do: ``docs/removal.md``, "Removal by
    erasure" and "Removal by training".

    Whatever the setting, :meth:`loss` also returns the SPC and MAE of
    every pattern as ``pos_spc_<P>`` and ``pos_mae_<P>``: keys without
    ``loss`` in their name are logged but not added to the total loss by
    mmengine's ``BaseModel.parse_losses``.

    ``conv_padding`` defaults to 0, unlike the usual ``kernel_size // 2``:
    zero padding in the head would inject position information of its own
    (the paper reads position out of raw images through padding alone), and
    the head should measure what the backbone carries. Each convolution then
    shrinks the output by ``kernel_size - 1 - 2 * conv_padding``.

    An ``in_index`` outside the backbone's outputs can only be seen once the
    features arrive: the forward pass raises ``ValueError`` then, naming the
    valid indices. In a segmentor, ``predict`` and ``tensor`` modes do not
    call auxiliary heads; the head's own ``predict`` (inherited) returns the
    position maps resized to the input image, not class logits.

    Args:
        in_channels (Sequence[int]): Channels of each selected level.
        channels (int): Width of the hidden convolutions (used only when
            ``num_convs > 1``). Default: 64.
        in_index (Sequence[int]): Backbone levels to read. Default:
            (0, 1, 2, 3).
        patterns (Sequence[str]): Position maps to regress, among ``'H'``,
            ``'V'``, ``'G'``, ``'HS'``, ``'VS'``. Default: all five.
        grid_size (int | tuple[int, int]): Size the levels are resized to.
            Default: 28.
        num_convs (int): Number of convolutions. Default: 1.
        kernel_size (int): Kernel size of every convolution. Default: 3.
        conv_padding (int): Zero padding of every convolution. Default: 0.
        grad_scale (float): Multiplier of the gradient that flows from the
            head into the features. Default: 1.0.
        loss_weight (float): Weight of ``loss_pos``. Default: 1.0.
        sigma (float): Width of the ``'G'`` map, as a fraction of the side.
            Default: 0.5.
        periods (float): Periods of the ``'HS'`` and ``'VS'`` maps.
            Default: 2.5.
        norm_cfg (dict | None): Norm layer between convolutions, and of
            ``out_norm`` (``dict(type='BN')`` when None). Default:
            dict(type='BN').
        dropout_ratio (float): Dropout before the last convolution.
            Default: 0.
        loss_type (str): ``'bce'`` (binary cross-entropy with logits against
            the soft maps) or ``'mse'`` (the paper's mean squared error of
            the sigmoid output). Default: 'bce'.
        out_norm (bool): A norm layer (one channel per pattern) between the
            last convolution and the sigmoid, as the reference module's
            ``BatchNorm2d(1)``. Default: False.
        align_corners (bool): ``align_corners`` of the bilinear resize to
            the grid; the reference uses True (the two differ by up to 1.57
            in the output of an untrained head). Default: False.
        **kwargs: Passed to :class:`BaseDecodeHead` (``conv_cfg``,
            ``act_cfg``, ``init_cfg``).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int = 64,
                 in_index: Sequence[int] = (0, 1, 2, 3),
                 patterns: Sequence[str] = PATTERNS,
                 grid_size: Union[int, Tuple[int, int]] = 28,
                 num_convs: int = 1,
                 kernel_size: int = 3,
                 conv_padding: int = 0,
                 grad_scale: float = 1.0,
                 loss_weight: float = 1.0,
                 sigma: float = 0.5,
                 periods: float = 2.5,
                 norm_cfg: OptConfigType = dict(type='BN'),
                 dropout_ratio: float = 0.,
                 loss_type: str = 'bce',
                 out_norm: bool = False,
                 align_corners: bool = False,
                 **kwargs):
        patterns = check_patterns(patterns)
        if loss_type not in LOSS_TYPES:
            raise ValueError(f'unknown loss_type {loss_type!r}; expected one '
                             f'of {", ".join(map(repr, LOSS_TYPES))}')
        if isinstance(in_index, int) and isinstance(in_channels, int):
            in_index, in_channels = [in_index], [in_channels]
        if not (isinstance(in_index, (list, tuple))
                and isinstance(in_channels, (list, tuple))
                and len(in_index) == len(in_channels) > 0):
            raise ValueError(
                f'in_channels and in_index must be lists of the same length '
                f'(one entry per backbone level), got in_channels='
                f'{in_channels!r}, in_index={in_index!r}')
        if not all(isinstance(i, int) for i in in_index):
            raise ValueError(f'in_index must hold ints (backbone output '
                             f'indices), got {in_index!r}')
        if num_convs < 1:
            raise ValueError(f'num_convs must be >= 1, got {num_convs}')
        if kernel_size < 1 or conv_padding < 0:
            raise ValueError(f'kernel_size must be >= 1 and conv_padding >= '
                             f'0, got {kernel_size} and {conv_padding}')
        grid = _pair(grid_size)
        shrink = num_convs * (kernel_size - 1 - 2 * conv_padding)
        out_size = (grid[0] - shrink, grid[1] - shrink)
        if min(out_size) < 2:
            raise ValueError(
                f'grid_size {grid} with {num_convs} conv(s) of kernel '
                f'{kernel_size} and padding {conv_padding} leaves an output '
                f'of {out_size}; a position map needs at least 2x2: enlarge '
                f'grid_size or conv_padding, or use fewer or smaller convs')
        super().__init__(
            list(in_channels),
            channels,
            num_classes=len(patterns),
            out_channels=len(patterns),
            threshold=0.5,  # unused; keeps mmseg's binary-case warning quiet
            in_index=list(in_index),
            input_transform='multiple_select',
            norm_cfg=norm_cfg,
            dropout_ratio=dropout_ratio,
            align_corners=bool(align_corners),
            loss_decode=[],  # the loss is computed in loss_by_feat
            **kwargs)
        del self.loss_decode
        self.patterns = patterns
        self.grid_size = grid
        self.num_convs = num_convs
        self.kernel_size = kernel_size
        self.conv_padding = conv_padding
        self.grad_scale = float(grad_scale)
        self.loss_weight = loss_weight
        self.sigma = sigma
        self.periods = periods
        self.loss_type = loss_type

        width = sum(self.in_channels)
        convs = []
        for _ in range(num_convs - 1):
            convs.append(
                ConvModule(
                    width,
                    channels,
                    kernel_size,
                    padding=conv_padding,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg))
            width = channels
        self.convs = nn.Sequential(*convs)
        self.conv_seg = nn.Conv2d(
            width, len(patterns), kernel_size, padding=conv_padding)
        self.out_norm = build_norm_layer(
            self.norm_cfg or dict(type='BN'),
            len(patterns))[1] if out_norm else None

    def _transform_inputs(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        """Select the levels, checking index and channels against them."""
        num = len(inputs)
        feats = []
        for index, channels in zip(self.in_index, self.in_channels):
            if not -num <= index < num:
                raise ValueError(
                    f'PosENetHead in_index {index} is outside the backbone\'s '
                    f'{num} outputs; valid indices are 0..{num - 1} (or '
                    f'-{num}..-1)')
            if inputs[index].shape[1] != channels:
                raise ValueError(
                    f'PosENetHead expects {channels} channels at backbone '
                    f'output {index} (in_channels={self.in_channels}), got '
                    f'{inputs[index].shape[1]}')
            feats.append(inputs[index])
        return feats

    def _to_grid(self, x: Tensor) -> Tensor:
        """``x`` with the head's gradient scale, resized to the grid.

        A level already on the grid is not resized: bilinear resizing to
        the same size is the identity (with or without ``align_corners``),
        and skipping it saves a full copy of the level per step (the
        probe's cached features are all on the grid). Other levels are
        resized bilinearly by :func:`~possec.models.layers.bilinear_resize`
        (``F.interpolate``'s weights as two matrix products, faster with
        its backward for these wide, small maps on CPU; the timings:
        ``docs/benchmarks.md``).
        """
        x = scale_grad(x, self.grad_scale)
        if tuple(x.shape[-2:]) == tuple(self.grid_size):
            return x
        return bilinear_resize(x, self.grid_size, self.align_corners)

    def _forward_feature(self, inputs: Sequence[Tensor]) -> Tensor:
        """Resize the selected levels to the grid, concatenate, convolve."""
        feats = [self._to_grid(x) for x in self._transform_inputs(inputs)]
        return self.convs(feats[0] if len(feats) == 1 else torch.cat(
            feats, dim=1))

    def logits(self, inputs: Sequence[Tensor]) -> Tensor:
        """Position maps before the sigmoid, (N, len(patterns), h, w).

        With one convolution and no dropout, resize, concatenation and
        convolution run as one
        :func:`~possec.models.layers.resize.resize_conv2d` (the same
        numbers up to float rounding, tested; levels smaller than the
        output mix their channels before the resize, which is faster).
        """
        if self.num_convs == 1 and self.dropout is None and type(
                self)._forward_feature is PosENetHead._forward_feature:
            feats = [
                scale_grad(x, self.grad_scale)
                for x in self._transform_inputs(inputs)
            ]
            out = resize_conv2d(feats, self.conv_seg.weight,
                                self.conv_seg.bias, self.grid_size,
                                self.align_corners, self.conv_padding)
            return out if self.out_norm is None else self.out_norm(out)
        out = self.cls_seg(self._forward_feature(inputs))
        return out if self.out_norm is None else self.out_norm(out)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Position maps in [0, 1], shape (N, len(patterns), h, w)."""
        return self.logits(inputs).sigmoid()

    def targets(self, pos_maps: Tensor) -> Tensor:
        """Ground-truth maps matching ``pos_maps`` in shape, device, dtype."""
        return position_maps(
            self.patterns,
            tuple(pos_maps.shape[-2:]),
            batch_size=pos_maps.shape[0],
            device=pos_maps.device,
            dtype=pos_maps.dtype,
            sigma=self.sigma,
            periods=self.periods)

    def loss(self,
             inputs: Sequence[Tensor],
             batch_data_samples: Optional[SampleList] = None,
             train_cfg: OptConfigType = None) -> Dict[str, Tensor]:
        """Position loss and metrics; segmentation labels are not used."""
        return self.loss_by_feat(self.logits(inputs), batch_data_samples,
                                 logits=True)

    def map_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """``loss_type``'s loss of pre-sigmoid maps against ``target``,
        averaged over every element (not yet weighted)."""
        if self.loss_type == 'bce':
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits.sigmoid(), target)

    def loss_by_feat(self,
                     pos_maps: Tensor,
                     batch_data_samples: Optional[SampleList] = None,
                     logits: bool = False) -> Dict[str, Tensor]:
        """``loss_pos`` (``loss_type``'s loss x ``loss_weight``),
        ``pos_spc_<P>`` and ``pos_mae_<P>`` (detached) for every pattern.

        Args:
            pos_maps (Tensor): The head's maps, (N, len(patterns), h, w):
                sigmoid outputs (as :meth:`forward` returns them), or logits
                when ``logits`` is True.
            batch_data_samples (list, optional): Unused.
            logits (bool): Whether ``pos_maps`` are logits. Default: False.
        """
        target = self.targets(pos_maps)
        if logits:
            loss = self.map_loss(pos_maps, target)
            pos_maps = pos_maps.detach().sigmoid()
        elif self.loss_type == 'bce':
            loss = F.binary_cross_entropy(pos_maps, target)
        else:
            loss = F.mse_loss(pos_maps, target)
        losses = dict(loss_pos=loss * self.loss_weight)
        metrics = position_metrics(pos_maps.detach(), target, self.patterns)
        losses.update(
            {f'pos_{k}': v.float()
             for k, v in metrics.items()})
        return losses
