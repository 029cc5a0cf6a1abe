"""Translation consistency between two shifted crops of one image."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor


def shift_consistency_loss(full: Sequence[Tensor], crop: Sequence[Tensor],
                           offset: Tuple[int, int],
                           strides: Sequence[int]) -> Tensor:
    """Relative squared difference of the features of an image and of a
    crop of it, on the pixels they share.

    For each level, ``crop``'s map (h, w) is compared with the window of
    ``full``'s map that starts at ``offset / stride``:
    ``sum((a - b)^2) / sum(a^2 + b^2)``, which lies in [0, 2], is 0 only for
    equal features and does not change when both are scaled. The levels'
    values are averaged.

    Args:
        full (Sequence[Tensor]): Levels of the image, (N, C, H_l, W_l).
        crop (Sequence[Tensor]): Levels of the crop.
        offset (tuple[int, int]): Top-left corner of the crop in the image,
            in pixels; a multiple of every stride.
        strides (Sequence[int]): Pixels per feature cell of each level.

    Returns:
        Tensor: The loss (a scalar).
    """
    losses = []
    for a, b, s in zip(full, crop, strides):
        y, x = offset[0] // s, offset[1] // s
        h, w = b.shape[-2:]
        a = a[..., y:y + h, x:x + w]
        if a.shape != b.shape:
            raise ValueError(
                f'crop features {tuple(b.shape)} do not fit the image '
                f'features at offset {offset} (stride {s}): the backbone '
                f'must map an image of k*stride pixels to k cells')
        diff = (a - b).pow(2).sum()
        losses.append(diff / (a.pow(2).sum() + b.pow(2).sum() + 1e-12))
    return torch.stack(losses).mean()


@MODELS.register_module()
class ShiftConsistencyEncoderDecoder(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` plus a translation-consistency loss that
    removes absolute position from the backbone.

    An AugShift-style objective after `Global Pooling, More than Meets the
    Eye: Position Information is Encoded Channel-Wise in CNNs
    <https://arxiv.org/abs/2108.07884>`_ (Islam et al., ICCV 2021): a CNN
    whose features are translation *equivariant* cannot say where it is.
    Each training step, besides the usual losses on the batch, the backbone
    also runs on a crop of the batch, ``shift`` pixels smaller on each axis,
    taken at a random corner (top or bottom, left or right), and
    ``loss_shift`` (weight x :func:`shift_consistency_loss`) asks the crop's
    features to equal the image's features on the pixels they share. Two of
    the crop's borders lie inside the image, so features that encode the
    distance to a border (what zero padding gives) are penalised there.
    Gradient flows into both branches. The crop is not labelled; the
    segmentation losses see only the full batch. Inference is the parent's.

    It lowers the position a fresh probe reads, at a cost in mIoU that
    grows with ``shift_weight``; the measurements: ``docs/removal.md``,
    "Removal by training".

    ``shift`` must be a multiple of the stride of every level compared, and
    the backbone must map ``k * stride`` pixels to ``k`` cells (a ResNet-D8
    on inputs that are a multiple of 8, or of 32 for ResNet-D32).

    Args:
        shift (int): Pixels cut from the crop on each axis. Default: 16.
        shift_weight (float): Weight of ``loss_shift``. Default: 1.0.
        shift_levels (Sequence[int]): Backbone (or neck) outputs compared.
            Default: (0, 1, 2, 3).
        **kwargs: Arguments of mmseg's ``EncoderDecoder``.
    """

    def __init__(self,
                 *args,
                 shift: int = 16,
                 shift_weight: float = 1.0,
                 shift_levels: Sequence[int] = (0, 1, 2, 3),
                 **kwargs):
        if not (isinstance(shift, int) and shift > 0):
            raise ValueError(f'shift must be a positive int (pixels), got '
                             f'{shift!r}')
        if not shift_weight >= 0:
            raise ValueError(f'shift_weight must be >= 0, got '
                             f'{shift_weight!r}')
        super().__init__(*args, **kwargs)
        self.shift = shift
        self.shift_weight = float(shift_weight)
        self.shift_levels = tuple(shift_levels)

    def _strides(self, inputs: Tensor, feats: List[Tensor]) -> List[int]:
        strides = []
        for level in self.shift_levels:
            if not -len(feats) <= level < len(feats):
                raise ValueError(
                    f'shift_levels has {level}; the backbone has '
                    f'{len(feats)} outputs (valid 0..{len(feats) - 1})')
            size = feats[level].shape[-2:]
            s = inputs.shape[-2] // size[0]
            if (s * size[0] != inputs.shape[-2]
                    or s * size[1] != inputs.shape[-1]
                    or self.shift % s):
                raise ValueError(
                    f'ShiftConsistencyEncoderDecoder needs output {level} '
                    f'to be the input size over an integer stride dividing '
                    f'shift={self.shift}; got input '
                    f'{tuple(inputs.shape[-2:])} and output {tuple(size)}: '
                    f'use inputs that are a multiple of the stride, or '
                    f'another shift')
            strides.append(s)
        return strides

    def shift_loss(self, inputs: Tensor, feats: List[Tensor],
                   generator: Optional[torch.Generator] = None) -> Tensor:
        """``loss_shift`` (weighted) for a batch and its features; the
        crop's corner is drawn from ``generator`` (torch's global one when
        None)."""
        strides = self._strides(inputs, feats)
        h, w = inputs.shape[-2:]
        if self.shift >= min(h, w):
            raise ValueError(f'shift={self.shift} leaves nothing of a '
                             f'{h}x{w} input; use a smaller shift')
        y0, x0 = (torch.randint(2, (2, ), generator=generator) *
                  self.shift).tolist()
        crop = inputs[..., y0:y0 + h - self.shift, x0:x0 + w - self.shift]
        crop_feats = self.extract_feat(crop)
        return self.shift_weight * shift_consistency_loss(
            [feats[i] for i in self.shift_levels],
            [crop_feats[i] for i in self.shift_levels], (y0, x0), strides)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """The parent's losses plus ``loss_shift``."""
        x = self.extract_feat(inputs)
        losses = dict()
        losses.update(self._decode_head_forward_train(x, data_samples))
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        losses['loss_shift'] = self.shift_loss(inputs, x)
        return losses
