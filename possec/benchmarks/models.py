"""The models possec's benchmarks share.

Every benchmark that times a whole segmentor builds it here, from the demo
or the headline config with random weights (:func:`build_model`); the
inference benchmarks wrap it as one forward (:class:`InferenceForward`) and
fold its BatchNorms as ``tools/test.py --fuse-conv-bn`` does
(:func:`fold_batch_norm`). The benchmarks of parts build the R-D8 backbone
of ``fcn_r50-d8`` in any padding mode (:func:`build_backbone`), the
position head of the zoo configs (:func:`position_head_config`), the
paper-form ParseNet head (:func:`parsenet_head_config`) and their summed
loss (:func:`decode_loss`); the position head's "before" readout
(:class:`ReadoutBefore`) is a variant of the heads and training
benchmarks. No benchmark builds these models itself.
"""
import copy
import functools
from types import SimpleNamespace
from typing import Callable, Optional, Sequence

import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from torch import nn

from ..analysis.common import build_offline
from ..analysis.common.config import load_tool_config
from ..apis.config_files import load_config
from ..models.decode_heads import PosENetHead
from ..models.layers.padding import resolve_padding_mode

__all__ = [
    'DEMO_CONFIG', 'FCN_R50_D8', 'HEADLINE_CONFIG', 'POSITION_HEAD_CONFIG',
    'InferenceForward', 'ReadoutBefore', 'backbone_loss', 'build_backbone',
    'build_model', 'decode_loss', 'fold_batch_norm', 'parsenet_head_config',
    'position_head_config', 'stage_channels', 'use_readout_before'
]

#: The demo config (``make demo``): ParseNet + position head, R-18-D8.
DEMO_CONFIG = 'possec::demo/parsenet_pos_synthetic.py'
#: The headline zoo config: ParseNet + position head, R-50-D8, VOC 512².
HEADLINE_CONFIG = (
    'possec::zoo/parsenet-pos_r50-d8-zeros_4xb4-20k_voc12aug-512x512.py')
#: The config piece that holds the position head (see
#: :func:`possec.analysis.common.config_path`).
POSITION_HEAD_CONFIG = 'possec::_base_/models/posenet_aux.py'
#: mmseg's model config whose backbone (ResNetV1c-50, dilations (1, 1, 2,
#: 4), strides (1, 2, 1, 1)) the benchmarks of parts build.
FCN_R50_D8 = 'mmseg::_base_/models/fcn_r50-d8.py'


def build_model(config: str, size: int) -> nn.Module:
    """A segmentor from ``config`` with random weights, in eval mode.

    Built offline (:func:`possec.analysis.common.build_offline`: no
    pretrained weights, SyncBN as BN), with the data preprocessor's fixed
    size set to ``size``.

    Args:
        config (str): ``possec::<path>`` or a config file.
        size (int): Input height and width.

    Returns:
        nn.Module: The segmentor.
    """
    cfg = load_tool_config(config)
    if cfg.model.get('data_preprocessor') is not None:
        cfg.model.data_preprocessor.size = (size, size)
    return build_offline(cfg.model).eval()


class InferenceForward(nn.Module):
    """The whole-image inference of an ``EncoderDecoder`` as one forward.

    ``encode_decode`` runs the backbone, the decode head and the resize of
    the logits to the input size, which is what ``predict`` does per image
    before the arg-max; the inputs are already normalised.

    Args:
        segmentor (nn.Module): An mmseg ``EncoderDecoder``.
        size (int): Input height and width.
    """

    def __init__(self, segmentor: nn.Module, size: int) -> None:
        super().__init__()
        self.segmentor = segmentor
        self.meta = dict(img_shape=(size, size), ori_shape=(size, size),
                         pad_shape=(size, size), padding_size=[0, 0, 0, 0])

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.segmentor.encode_decode(inputs,
                                            [self.meta] * inputs.shape[0])


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every BatchNorm folded into
    the convolution before it, by the code ``tools/test.py
    --fuse-conv-bn`` runs (:class:`possec.apis.test.FuseConvBNHook`, which
    calls :func:`mmcv.cnn.fuse_conv_bn`).

    At inference a BN is a per-channel affine map, so it can be merged into
    the preceding convolution's weight and bias: the outputs are the same
    up to float rounding, and the BN's pass over the activations is gone.
    """
    from ..apis.test import FuseConvBNHook
    folded = copy.deepcopy(model)
    FuseConvBNHook().before_test(SimpleNamespace(model=folded))
    return folded


class ReadoutBefore(PosENetHead):
    """PosENetHead computing its readout as before commit ``12470f2``:
    every level resized to the grid, concatenated, convolved (its own
    ``_forward_feature`` turns off the one-call
    :func:`~possec.models.layers.resize.resize_conv2d`). Not registered:
    the benchmarks' "before" variant only."""

    def _forward_feature(self, inputs):
        return super()._forward_feature(inputs)


def use_readout_before(model: nn.Module) -> int:
    """Switch every :class:`PosENetHead` of ``model`` to
    :class:`ReadoutBefore` in place.

    Returns:
        int: How many heads were switched.
    """
    found = 0
    for module in model.modules():
        if type(module) is PosENetHead:
            module.__class__ = ReadoutBefore
            found += 1
    return found


@functools.lru_cache()
def _r50_d8() -> Config:
    """The backbone entry of :data:`FCN_R50_D8` (read once)."""
    path, _ = Config._get_cfg_path(FCN_R50_D8, '')
    return load_config(path).model.backbone


def build_backbone(depth: int = 50,
                   padding_mode: Optional[str] = None) -> nn.Module:
    """The R-D8 backbone of mmseg's ``fcn_r50-d8`` (:data:`FCN_R50_D8`) at
    any depth, with BN instead of SyncBN, in training mode.

    Args:
        depth (int): ResNetV1c depth (18, 34, 50, 101). Default: 50.
        padding_mode (str, optional): A possec padding mode: possec's
            ``PadResNetV1c`` in that mode; None builds mmseg's own
            ``ResNetV1c``. Default: None.
    """
    cfg = dict(_r50_d8().to_dict(), depth=depth,
               norm_cfg=dict(type='BN', requires_grad=True))
    if padding_mode is not None:
        cfg.update(type='PadResNetV1c',
                   padding_mode=resolve_padding_mode(padding_mode))
    backbone = MODELS.build(cfg)
    backbone.train()  # mmseg's ResNet.train() returns None: no chaining
    return backbone


def stage_channels(depth: int) -> list:
    """Output channels of the four stages of a ResNetV1c of ``depth``."""
    expansion = 4 if depth >= 50 else 1
    return [64 * expansion * 2**i for i in range(4)]


def parsenet_head_config(in_channels: int, num_classes: int,
                         norm_cfg: dict, **kwargs) -> dict:
    """The paper-form ``ParseNetHead`` (no projection conv) on the last
    stage; ``kwargs`` replace its entries."""
    return dict(dict(type='ParseNetHead', channels=None,
                     in_channels=in_channels, in_index=3, dropout_ratio=0.1,
                     num_classes=num_classes, norm_cfg=norm_cfg,
                     align_corners=False), **kwargs)


def position_head_config(stage_channels: Sequence[int]) -> dict:
    """The position head as the zoo configs use it: the ``posenet_head`` of
    ``configs/_base_/models/posenet_aux.py`` (grad_scale +1), reading the
    four stages of the benchmarked backbone.

    Args:
        stage_channels (Sequence[int]): Channels of the four backbone stages.

    Returns:
        dict: A ``PosENetHead`` config.
    """
    piece = load_tool_config(POSITION_HEAD_CONFIG)
    return dict(piece.posenet_head.to_dict(),
                in_channels=list(stage_channels))


def decode_loss(backbone: nn.Module, heads: Sequence[nn.Module],
                inputs: torch.Tensor,
                samples: list) -> Callable[[], torch.Tensor]:
    """The forward of a training step of ``backbone`` and ``heads``: the
    sum of the heads' ``loss*`` terms on one batch, as a zero-argument
    function."""

    def loss():
        feats = backbone(inputs)
        total = 0
        for head in heads:
            losses = head.loss(feats, samples, dict())
            total = total + sum(
                v for k, v in losses.items() if k.startswith('loss'))
        return total

    return loss


def backbone_loss(backbone: nn.Module,
                  inputs: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The forward of a backbone-only training step: the sum of the means
    of its outputs (a loss that reaches every stage), as a zero-argument
    function; ``backbone`` is put in training mode now."""
    backbone.train()  # mmseg's ResNet.train() returns None: no chaining
    return lambda: sum(out.mean() for out in backbone(inputs))
