"""Frozen encoders for the position probe.

The probe of `How Much Position Information Do Convolutional Neural Networks
Encode? <https://arxiv.org/abs/2001.08248>`_ reads position out of a frozen
encoder's multi-level features. An encoder here is any backbone that maps
an image batch to a tuple of feature levels (every mmseg backbone does),
wrapped so that it normalises ``uint8`` images itself, stays in eval mode
and has no trainable parameters:

- ``'posenet'``: no encoder at all, the raw image in [0, 1] is the only
  level (the paper's "PosENet alone");
- ``'vgg16'``: possec's :class:`~possec.models.backbones.PadVGG` of depth
  16 (five levels, relu1_2 .. relu5_3), randomly initialised unless a
  checkpoint is given (torchvision's ``features.*`` layout);
- a config file: the ``model.backbone`` of any mmseg config, optionally with
  the backbone weights of a trained segmentor's checkpoint (``backbone.*``).

Nothing is ever downloaded: ``init_cfg`` and ``pretrained`` are cleared.
"""
import copy
import inspect
from typing import List, Optional, Sequence

import torch
from mmseg.registry import MODELS
from torch import Tensor, nn

from possec.apis.paths import CONFIG_EXTS, check_checkpoint_path
from possec.errors import CheckpointError
from possec.models.layers import convert_padding, resolve_padding_mode
from possec.runtime import load_local_checkpoint
from ..common import build_offline
from ..common.config import load_tool_config
from .data import ProbeError

ENCODERS = ('posenet', 'vgg16')
# mmseg's data_preprocessor defaults (ImageNet statistics, RGB, 0..255)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
VGG16_CFG = dict(type='PadVGG', depth=16)


class FrozenEncoder(nn.Module):
    """A backbone in eval mode, without gradients, fed ``uint8`` images.

    Args:
        backbone (nn.Module, optional): Maps a normalised float batch to a
            tensor or a tuple of feature levels; None means the identity
            (the image is the only level). Default: None.
        mean (Sequence[float]): Per-channel mean subtracted from the 0..255
            RGB image. Default: ImageNet's.
        std (Sequence[float]): Per-channel divisor. Default: ImageNet's.
        name (str): Shown in reports. Default: 'encoder'.
    """

    def __init__(self,
                 backbone: Optional[nn.Module] = None,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 name: str = 'encoder'):
        super().__init__()
        self.backbone = backbone
        self.name = name
        self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1))
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> 'FrozenEncoder':
        """Stay in eval mode whatever is asked (frozen BN statistics)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> List[Tensor]:
        """``uint8`` RGB images ``(B, 3, S, S)`` -> list of feature levels."""
        x = (images.float() - self.mean) / self.std
        if self.backbone is None:
            return [x]
        out = self.backbone(x)
        return [out] if isinstance(out, Tensor) else list(out)


def build_encoder(encoder: Optional[str] = 'posenet',
                  config: Optional[str] = None,
                  checkpoint: Optional[str] = None,
                  padding_mode: Optional[str] = None,
                  cfg_options: Optional[dict] = None,
                  seed: int = 0) -> FrozenEncoder:
    """Build the probe's frozen encoder.

    Args:
        encoder (str, optional): ``'posenet'`` or ``'vgg16'``; ignored when
            ``config`` is given. Default: 'posenet'.
        config (str, optional): An mmseg config file; its ``model.backbone``
            is the encoder and its ``model.data_preprocessor`` mean/std (if
            any) normalise the images. Default: None.
        checkpoint (str, optional): A local checkpoint whose ``backbone.*``
            weights (a segmentor's) or whose whole state dict (a bare
            backbone's) are loaded strictly. Default: None (random init).
        padding_mode (str, optional): Border rule of the encoder, one of
            :data:`possec.models.layers.PADDING_MODES`: passed to backbones
            that take a ``padding_mode`` argument, otherwise applied with
            :func:`possec.models.layers.convert_padding`. None keeps the
            backbone's own. Default: None.
        cfg_options (dict, optional): Overrides merged into ``config``.
            Default: None.
        seed (int): Seed of the random initialisation. Default: 0.

    Returns:
        FrozenEncoder: The encoder, on the CPU.
    """
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if config is not None:
        cfg = load_tool_config(config, cfg_options)
        model = cfg.get('model', {})
        if not isinstance(model.get('backbone'), dict):
            raise ProbeError(f'config {config!r} has no model.backbone; '
                             f'give an mmseg model config')
        backbone_cfg = copy.deepcopy(model['backbone'].to_dict())
        prep = model.get('data_preprocessor') or {}
        mean, std = prep.get('mean', mean), prep.get('std', std)
        name = backbone_cfg['type']
    elif encoder == 'posenet':
        if padding_mode is not None or checkpoint is not None:
            raise ProbeError(
                'the posenet encoder is the raw image (no convolutions, no '
                'weights): padding_mode and checkpoint need a backbone '
                '(encoder vgg16 or a config)')
        return FrozenEncoder(None, (0., 0., 0.), (255., 255., 255.),
                             'posenet')
    elif encoder == 'vgg16':
        backbone_cfg, name = copy.deepcopy(VGG16_CFG), 'vgg16'
    else:
        raise ProbeError(f'unknown encoder {encoder!r}; expected one of '
                         f'{", ".join(ENCODERS)}, or a config file with a '
                         f'model.backbone (any mmseg backbone)')
    convert = _set_padding_mode(backbone_cfg, padding_mode)
    backbone = build_offline(backbone_cfg, seed,
                             init_weights=checkpoint is None)
    if checkpoint is not None:
        if checkpoint.lower().endswith(CONFIG_EXTS):  # the arguments mixed
            check_checkpoint_path(checkpoint, '--checkpoint')
        _load_backbone_weights(backbone, checkpoint)
    if convert:
        try:
            backbone = convert_padding(backbone, padding_mode)
        except TypeError as exc:
            raise ProbeError(f'{name} cannot switch to padding_mode '
                             f'{padding_mode!r}: {exc}') from None
    if padding_mode is not None:
        name = f'{name} ({padding_mode})'
    return FrozenEncoder(backbone, mean, std, name)


def _set_padding_mode(backbone_cfg: dict, mode: Optional[str]) -> bool:
    """Put ``mode`` into the config if the backbone takes it; return whether
    the built backbone must be converted instead."""
    if mode is None:
        return False
    try:
        mode = resolve_padding_mode(mode)
    except ValueError as exc:
        raise ProbeError(str(exc)) from None
    cls = backbone_cfg['type']
    if isinstance(cls, str):
        cls = MODELS.get(cls)
        if cls is None:
            raise ProbeError(f'backbone type {backbone_cfg["type"]!r} is not '
                             f'registered in mmseg\'s MODELS')
    if 'padding_mode' in inspect.signature(cls.__init__).parameters:
        backbone_cfg['padding_mode'] = mode
        return False
    if mode == 'none':
        raise ProbeError(
            f'backbone {cls.__name__} takes no padding_mode argument, and '
            f"'none' changes feature sizes (residual additions break): use a "
            f'possec backbone that handles it (PadResNet, PadResNetV1c, '
            f'PadResNetV1d, PadVGG) or another mode')
    return mode != 'zeros'


def _load_backbone_weights(backbone: nn.Module, checkpoint: str) -> None:
    try:
        ckpt = load_local_checkpoint(checkpoint, map_location='cpu')
    except (FileNotFoundError, CheckpointError) as exc:
        raise ProbeError(str(exc)) from None
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ProbeError(f'checkpoint {checkpoint!r} holds no state dict')
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items()
                 if k.startswith('backbone.')}
    try:
        missing, unexpected = backbone.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ProbeError(
            f'checkpoint {checkpoint!r} does not fit the backbone '
            f'{type(backbone).__name__}: {exc}') from None
    if missing or unexpected:
        raise ProbeError(
            f'checkpoint {checkpoint!r} does not fit the backbone '
            f'{type(backbone).__name__}: {len(missing)} missing keys (e.g. '
            f'{missing[:3]}), {len(unexpected)} unexpected (e.g. '
            f'{unexpected[:3]}); give the checkpoint of a model built from '
            f'the same config')
