"""VGG backbone returning the activations before each pool."""
import warnings
from typing import Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import VGG, build_norm_layer
from mmengine.model import BaseModule
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm
from mmseg.registry import MODELS
from torch import Tensor

from ..layers.padding import convert_padding, resolve_padding_mode


@MODELS.register_module()
class PadVGG(VGG, BaseModule):
    """VGG backbone with ``padding_mode``, for segmentation and probing.

    The network of `Very Deep Convolutional Networks for Large-Scale Image
    Recognition <https://arxiv.org/abs/1409.1556>`_, built by mmcv's
    ``mmcv.cnn.VGG``. It returns the activation at the end of each stage,
    *before* its pool (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 for
    VGG16), the levels read out by `How Much Position Information Do
    Convolutional Neural Networks Encode? <https://arxiv.org/abs/2001.08248>`_.
    The pool after the last stage is never built: no output needs it.

    Checkpoint layout: the modules live in ``self.features`` in torchvision's
    order (conv, [bn,] relu per layer, a max-pool closing each stage), so the
    keys are those of torchvision's ``vgg16`` (``vgg16_bn`` with
    ``with_bn=True``) ``features`` part and of mmcv's ``VGG``:
    ``features.0.weight``, ``features.0.bias``, ``features.2.weight`` ...
    ``features.28.bias``. A full torchvision checkpoint also holds
    ``classifier.*`` keys; ``init_cfg=dict(type='Pretrained', ...)`` loads
    non-strictly and reports them as unexpected.

    Args:
        depth (int): 11, 13, 16 or 19. Default: 16.
        with_bn (bool): A norm layer after every conv. Default: False.
        num_stages (int): Number of stages, 1 to 5. Default: 5.
        strides (Sequence[int]): Down-sampling in front of each stage: 2 is
            the usual 2x2 max-pool, 1 removes that pool. ``strides[0]`` must
            be 1. Default: (1, 2, 2, 2, 2).
        dilations (Sequence[int]): Dilation of each stage's convs; e.g.
            ``strides=(1, 2, 2, 2, 1), dilations=(1, 1, 1, 1, 2)`` gives
            relu5_3 at output stride 8. Default: (1, 1, 1, 1, 1).
        out_indices (Sequence[int]): Stages whose activations are returned.
            Default: (0, 1, 2, 3, 4).
        frozen_stages (int): The first ``frozen_stages`` stages are frozen
            (eval mode, no gradients); -1 or 0 freezes none. Default: -1.
        norm_cfg (dict): Norm layer config, used with ``with_bn``.
            Default: dict(type='BN', requires_grad=True).
        norm_eval (bool): Keep norm layers in eval mode. Default: False.
        ceil_mode (bool): ``ceil_mode`` of the pools. Default: False.
        padding_mode (str): Border rule of every conv, as in
            :class:`~possec.models.backbones.PadResNet`. With ``'none'`` each
            3x3 conv of dilation d shrinks a map by 2d: stage i maps ``H ->
            P_i(H) - 2 d_i n_i`` with n_i its number of convs (2, 2, 3, 3, 3
            for VGG16) and P_i the pool in front of it (``⌊H/2⌋``, or the
            identity when ``strides[i] == 1``). With ``'full'`` (full
            convolutions, :class:`~possec.models.layers.FullConv2d`) each
            such conv grows a map by 2d instead, uncropped (VGG has no
            residual additions to align; Kayhan & van Gemert's F-conv
            networks let the maps grow likewise). Default: 'zeros'.
        pretrained (str, optional): Deprecated; checkpoint path, as
            ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
            Default: None.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Default: None (Kaiming-normal convs, unit norm layers).

    Example:
        >>> import torch
        >>> self = PadVGG(depth=16).eval()
        >>> outs = self(torch.rand(1, 3, 64, 64))
        >>> [tuple(o.shape[1:]) for o in outs]
        [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8), (512, 4, 4)]
    """

    def __init__(self,
                 depth: int = 16,
                 with_bn: bool = False,
                 num_stages: int = 5,
                 strides: Sequence[int] = (1, 2, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3, 4),
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 ceil_mode: bool = False,
                 padding_mode: str = 'zeros',
                 pretrained: Optional[str] = None,
                 init_cfg=None):
        mode = resolve_padding_mode(padding_mode)
        if depth not in self.arch_settings:
            raise ValueError(f'unknown VGG depth {depth}; expected one of '
                             f'{sorted(self.arch_settings)}')
        if not 1 <= num_stages <= 5:
            raise ValueError(f'num_stages must be 1..5, got {num_stages}')
        if len(strides) != num_stages or len(dilations) != num_stages:
            raise ValueError(
                f'strides and dilations need one entry per stage '
                f'({num_stages}), got {tuple(strides)} and {tuple(dilations)}')
        if strides[0] != 1 or any(s not in (1, 2) for s in strides):
            raise ValueError(f'strides must be 1 or 2 with strides[0] == 1, '
                             f'got {tuple(strides)}')
        if not out_indices or not all(0 <= i < num_stages
                                      for i in out_indices):
            raise ValueError(f'out_indices must lie in 0..{num_stages - 1}, '
                             f'got {tuple(out_indices)}')
        if pretrained is not None and init_cfg is not None:
            raise ValueError('init_cfg and pretrained cannot both be set')
        super().__init__(
            depth,
            with_bn=with_bn,
            num_stages=num_stages,
            dilations=tuple(dilations),
            out_indices=tuple(out_indices),
            bn_eval=False,
            ceil_mode=ceil_mode,
            with_last_pool=False)
        if isinstance(pretrained, str):
            warnings.warn('DeprecationWarning: pretrained is deprecated, '
                          'please use "init_cfg" instead')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        elif init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
            ]
        self.init_cfg = init_cfg
        self.strides = tuple(strides)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.padding_mode = mode
        for i in range(1, num_stages):
            if strides[i] == 1:  # drop the pool closing the previous stage
                self.features[self.range_sub_modules[i - 1][1] - 1] = \
                    nn.Identity()
        if with_bn:
            for idx, layer in enumerate(self.features):
                if isinstance(layer, nn.BatchNorm2d):
                    self.features[idx] = build_norm_layer(
                        norm_cfg, layer.num_features)[1]
        convert_padding(self.features, mode)
        self._freeze_stages()

    def init_weights(self) -> None:
        """Initialise from ``init_cfg`` (mmengine's ``BaseModule`` way)."""
        BaseModule.init_weights(self)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Return the activations before each pool of ``out_indices``."""
        outs = []
        last = len(self.range_sub_modules) - 1
        for i, (start, end) in enumerate(self.range_sub_modules):
            has_pool = i < last
            for j in range(start, end - has_pool):
                x = self.features[j](x)
            if i in self.out_indices:
                outs.append(x)
            if i == max(self.out_indices):
                break
            if has_pool:
                x = self.features[end - 1](x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for i in range(max(self.frozen_stages, 0)):
            for j in range(*self.range_sub_modules[i]):
                layer = self.features[j]
                layer.eval()
                for param in layer.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True) -> 'PadVGG':
        """Set train mode, keeping frozen stages and (with ``norm_eval``)
        norm layers in eval mode."""
        nn.Module.train(self, mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
