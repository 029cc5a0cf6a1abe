"""ParseNet decode head: L2-normalised fusion of local and global features."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import ModuleList
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..layers.l2norm import L2Norm

FUSIONS = ('early', 'late')
INPUT_TRANSFORMS = (None, 'multiple_select')


def _check_levels(in_channels, in_index, input_transform) -> List[int]:
    """Validate the level arguments; return the channels of each level."""
    if input_transform not in INPUT_TRANSFORMS:
        raise ValueError(
            f'unknown input_transform {input_transform!r} for ParseNetHead; '
            f'expected one of {INPUT_TRANSFORMS} (every level is normalised '
            f'on its own, so use multiple_select, not resize_concat)')
    if input_transform is None:
        if not (isinstance(in_channels, int) and isinstance(in_index, int)):
            raise ValueError(
                f'with input_transform=None, in_channels and in_index must '
                f'both be int, got in_channels={in_channels!r}, '
                f'in_index={in_index!r}; for several levels pass lists and '
                f"input_transform='multiple_select'")
        return [in_channels]
    if not (isinstance(in_channels, (list, tuple))
            and isinstance(in_index, (list, tuple))
            and len(in_channels) == len(in_index) > 0):
        raise ValueError(
            f"with input_transform='multiple_select', in_channels and "
            f'in_index must be non-empty lists of the same length (one '
            f'entry per level), got in_channels={in_channels!r}, '
            f'in_index={in_index!r}')
    return list(in_channels)


@MODELS.register_module()
class ParseNetHead(BaseDecodeHead):
    """ParseNet: looking wider to see better.

    This head is the implementation of
    `ParseNet <https://arxiv.org/abs/1506.04579>`_. Each selected level is
    resized (bilinear) to the finest selected level and L2-normalised across
    channels at every position with its own learnable scale
    (:class:`L2Norm`). The global branch average-pools one level over the
    whole image, L2-normalises the pooled vector with its own scale and
    "unpools" it, i.e. replicates it to every position. Branches are
    ordered: levels in ``in_index`` order, then the global branch.

    ``fusion='early'`` concatenates the branches and classifies them with one
    1x1 ``conv_seg``. ``fusion='late'`` gives every branch its own 1x1
    classifier and sums the scores; ``conv_seg`` is then a ``ModuleList``
    with one ``Conv2d`` per branch. Without a projection the two are the
    same function (a linear classifier on a concatenation is the sum of
    linear classifiers on its parts); they differ once ``channels`` adds a
    projection conv, which in early fusion mixes the concatenated branches
    and in late fusion acts on each branch alone.

    ``channels=None`` is the paper form: the classifier sits directly on the
    normalised, fused features, and ``self.channels`` (the width of what
    :meth:`_forward_feature` returns, i.e. of the classifier input) is the
    fused width, the sum of the branch widths. An int adds a projection
    ``ConvModule`` (conv, ``norm_cfg``, ``act_cfg``) with that many output
    channels: after the concatenation in early fusion (``self.channels ==
    channels``), per branch in late fusion (``self.channels == channels *
    number of branches``).

    Args:
        in_channels (int | Sequence[int]): Channels of the selected level(s).
        channels (int, optional): Output channels of the projection conv;
            None for no projection (paper form). Default: None.
        use_global (bool): Whether to add the global-context branch; False
            gives the same head without global context (the ablation).
            Default: True.
        global_level (int): Which selected level the global branch pools,
            indexing the selected levels (not the backbone outputs).
            Default: -1 (the last selected, usually the deepest).
        fusion (str): ``'early'`` or ``'late'``, see above. Default: 'early'.
        init_scales (float | Sequence[float]): Initial L2Norm scale of every
            branch, or one value per branch (levels, then global).
            Default: 10.0.
        eps (float): ``eps`` of every :class:`L2Norm`. Default: 1e-10.
        proj_kernel_size (int): Kernel size of the projection conv; odd, with
            zero "same" padding (which marks the image border in the
            replicated global map when > 1). Default: 1.
        in_index (int | Sequence[int]): Backbone output(s) to use.
            Default: -1.
        input_transform (str, optional): None for one level,
            ``'multiple_select'`` for several. Default: None.
        **kwargs: Passed to :class:`BaseDecodeHead` (``num_classes``,
            ``dropout_ratio``, ``norm_cfg``, ``align_corners``,
            ``loss_decode``, ...).
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 channels: Optional[int] = None,
                 use_global: bool = True,
                 global_level: int = -1,
                 fusion: str = 'early',
                 init_scales: Union[float, Sequence[float]] = 10.0,
                 eps: float = 1e-10,
                 proj_kernel_size: int = 1,
                 in_index: Union[int, Sequence[int]] = -1,
                 input_transform: Optional[str] = None,
                 **kwargs) -> None:
        level_channels = _check_levels(in_channels, in_index, input_transform)
        if fusion not in FUSIONS:
            raise ValueError(f'unknown fusion {fusion!r}; expected one of '
                             f'{FUSIONS}')
        num_levels = len(level_channels)
        if not -num_levels <= global_level < num_levels:
            raise ValueError(f'global_level {global_level} is out of range '
                             f'for {num_levels} selected level(s)')
        if channels is not None and not (isinstance(channels, int)
                                         and channels > 0):
            raise ValueError(f'channels must be None (no projection) or a '
                             f'positive int, got {channels!r}')
        if proj_kernel_size < 1 or proj_kernel_size % 2 == 0:
            raise ValueError(f'proj_kernel_size must be a positive odd int, '
                             f'got {proj_kernel_size!r}')
        branch_channels = level_channels + (
            [level_channels[global_level]] if use_global else [])
        num_branches = len(branch_channels)
        if isinstance(init_scales, (int, float)):
            init_scales = [float(init_scales)] * num_branches
        elif len(init_scales) != num_branches:
            raise ValueError(
                f'init_scales has {len(init_scales)} entries but the head '
                f'has {num_branches} branches ({num_levels} level(s)'
                f'{" + global" if use_global else ""}); give one float or '
                f'one per branch')

        if channels is None:
            cls_channels = sum(branch_channels)
        elif fusion == 'early':
            cls_channels = channels
        else:
            cls_channels = channels * num_branches
        super().__init__(
            in_channels,
            cls_channels,
            in_index=in_index,
            input_transform=input_transform,
            **kwargs)
        self.use_global = use_global
        self.global_level = global_level
        self.fusion = fusion
        self.proj_channels = channels
        self.branch_channels = branch_channels

        self.level_norms = ModuleList([
            L2Norm(c, scale, eps)
            for c, scale in zip(level_channels, init_scales)
        ])
        self.global_norm = L2Norm(branch_channels[-1], init_scales[-1],
                                  eps) if use_global else None

        conv_kwargs = dict(
            kernel_size=proj_kernel_size,
            padding=proj_kernel_size // 2,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
        if channels is None:
            self.proj = None
        elif fusion == 'early':
            self.proj = ConvModule(sum(branch_channels), channels,
                                   **conv_kwargs)
        else:
            self.proj = ModuleList(
                [ConvModule(c, channels, **conv_kwargs)
                 for c in branch_channels])
        if fusion == 'late':
            # one classifier per branch, replacing BaseDecodeHead's single one
            cls_in = branch_channels if channels is None \
                else [channels] * num_branches
            self.cls_in_channels = cls_in
            self.conv_seg = nn.ModuleList(
                [nn.Conv2d(c, self.out_channels, 1) for c in cls_in])

    def _branches(self, inputs: List[Tensor]
                  ) -> Tuple[List[Tensor], Optional[Tensor]]:
        """The normalised level branches, all at the size of the finest
        selected level, and the normalised pooled global vector of shape
        (N, C, 1, 1) (None without the global branch)."""
        levels = self._transform_inputs(inputs)
        if self.input_transform is None:
            levels = [levels]
        size = max((x.shape[2:] for x in levels), key=lambda s: s.numel())
        branches = []
        for x, norm in zip(levels, self.level_norms):
            if x.shape[2:] != size:
                x = resize(
                    x,
                    size=size,
                    mode='bilinear',
                    align_corners=self.align_corners)
            branches.append(norm(x))
        pooled = None
        if self.use_global:
            pooled = self.global_norm(levels[self.global_level].mean(
                dim=(2, 3), keepdim=True))
        return branches, pooled

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        """Forward function for feature maps before classifying each pixel
        with ``self.cls_seg``.

        Args:
            inputs (list[Tensor]): List of multi-level img features.

        Returns:
            feats (Tensor): A tensor of shape (batch_size, self.channels,
                H, W), H x W being the size of the finest selected level:
                the fused (early) or concatenated per-branch (late)
                features.
        """
        branches, pooled = self._branches(inputs)
        if pooled is not None:  # unpool: replicate to every position
            branches.append(pooled.expand(-1, -1, *branches[0].shape[2:]))
        if self.fusion == 'early':
            feats = torch.cat(branches, dim=1)
            return feats if self.proj is None else self.proj(feats)
        if self.proj is not None:
            branches = [proj(b) for proj, b in zip(self.proj, branches)]
        return torch.cat(branches, dim=1)

    def cls_seg(self, feat: Tensor) -> Tensor:
        """Classify each pixel; in late fusion, sum the branch scores."""
        if self.fusion == 'early':
            return super().cls_seg(feat)
        if self.dropout is not None:
            feat = self.dropout(feat)
        chunks = feat.split(self.cls_in_channels, dim=1)
        output = self.conv_seg[0](chunks[0])
        for cls, chunk in zip(self.conv_seg[1:], chunks[1:]):
            output = output + cls(chunk)
        return output

    def _classify_branches(self, branches: List[Tensor],
                           pooled: Optional[Tensor]) -> Tensor:
        """``cls_seg(_forward_feature(inputs))`` of the paper form (early
        fusion, no projection) without building the concatenation.

        A 1x1 convolution of a concatenation is the sum of 1x1
        convolutions of its parts with the matching slices of the weight,
        and the unpooled global branch is the same at every position, so
        its scores are computed once per image and broadcast. Dropout is
        channel-wise (``nn.Dropout2d``), so dropping channels of each part
        follows the same distribution as dropping channels of the whole.
        The parameters (one ``conv_seg`` over all channels) are unchanged.
        """
        parts = branches + ([pooled] if pooled is not None else [])
        weights = self.conv_seg.weight.split(self.branch_channels, dim=1)
        output = None
        for part, weight in zip(parts, weights):
            if self.dropout is not None:
                part = self.dropout(part)
            score = F.conv2d(part, weight)
            output = score if output is None else output + score
        return output + self.conv_seg.bias.view(1, -1, 1, 1)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Forward function."""
        if self.fusion == 'early' and self.proj is None:
            return self._classify_branches(*self._branches(inputs))
        output = self._forward_feature(inputs)
        output = self.cls_seg(output)
        return output
