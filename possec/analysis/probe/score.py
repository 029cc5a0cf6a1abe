"""Scoring of the position probe: SPC and MAE at the paper's resolution.

`How Much Position Information Do Convolutional Neural Networks Encode?
<https://arxiv.org/abs/2001.08248>`_ upsamples the readout's maps to the
input image and scores them there. Scored on the small maps instead, the
padding-only readouts of raw images read lower: about .20 / .35 instead of
.27 / .40 for readout padding 1 / 2 at grid 28 (measured on noise images).
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from possec.position import mae_per_image, spc_per_image


def score(head, pred: Tensor,
          size: Optional[int] = None,
          batch_size: int = 16) -> Dict[str, Dict[str, float]]:
    """SPC and MAE of every pattern, per image then averaged.

    Args:
        head (PosENetHead): The readout (its patterns and map options:
            :meth:`PosENetHead.targets` makes the ground truth).
        pred (Tensor): Its maps, ``(N, P, h, w)``.
        size (int, optional): Score at ``size x size``: the maps are resized
            bilinearly and compared with ground truth made at that size, as
            the paper scores at the input image's resolution; a constant
            map stays exactly constant. None scores at the maps' own size.
            Default: None.
        batch_size (int): Images resized at a time. Default: 16.

    Returns:
        dict: ``{'spc': {pattern: value}, 'mae': {pattern: value}}``.
    """
    spcs, maes = [], []
    for start in range(0, len(pred), batch_size):
        chunk = pred[start:start + batch_size]
        if size is not None and tuple(chunk.shape[-2:]) != (size, size):
            flat = chunk.flatten(2)
            constant = (flat.amax(-1) == flat.amin(-1))[..., None, None]
            resized = F.interpolate(chunk, size=(size, size),
                                    mode='bilinear', align_corners=False)
            # float rounding of the bilinear weights must not turn a
            # constant map (no position at all) into ulp-level ranks
            chunk = torch.where(constant, chunk[..., :1, :1], resized)
        target = head.targets(chunk)
        spcs.append(spc_per_image(chunk, target))
        maes.append(mae_per_image(chunk, target))
    spcs, maes = torch.cat(spcs).mean(0), torch.cat(maes).mean(0)
    return dict(
        spc={p: float(spcs[k]) for k, p in enumerate(head.patterns)},
        mae={p: float(maes[k]) for k, p in enumerate(head.patterns)})
