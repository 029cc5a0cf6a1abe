"""SPC and MAE: how well a predicted position map matches its ground truth.

The two metrics of `How Much Position Information Do Convolutional Neural
Networks Encode? <https://arxiv.org/abs/2001.08248>`_ (Islam, Jia and Bruce,
ICLR 2020), computed per image over the flattened map and then averaged over
the images:

- SPC, Spearman's rank correlation: the Pearson correlation of the ranks,
  tied values sharing their average rank. A map with no spread (a constant
  prediction or a constant target) has no rank correlation: it scores 0,
  never NaN;
- MAE, the mean absolute error ``mean |pred - gt|``.

Batched torch code, usable inside a training step (no gradient flows) and in
tools. Pure torch; no mmseg.
"""
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor


def _flatten(pred: Tensor, target: Tensor) -> tuple:
    if pred.dim() < 2:
        raise ValueError(f'pred must have shape (N, P, ...) with a batch and '
                         f'a pattern dimension, got {tuple(pred.shape)}')
    try:
        target = target.expand_as(pred)
    except RuntimeError:
        raise ValueError(f'target of shape {tuple(target.shape)} does not '
                         f'broadcast to pred of shape {tuple(pred.shape)}')
    return pred.flatten(2), target.flatten(2)


def average_ranks(x: Tensor) -> Tensor:
    """Ranks along the last dimension, ties sharing their average rank.

    Ranks start at 1, as in ``scipy.stats.rankdata(method='average')``.

    Args:
        x (Tensor): Values, shape ``(..., L)``.

    Returns:
        Tensor: float64 ranks of the same shape.
    """
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    rows, length = x.shape
    if rows == 0 or length == 0:
        return torch.zeros(shape, dtype=torch.float64, device=x.device)
    values, order = x.sort(dim=1)
    # A new group of equal values starts wherever the sorted value changes;
    # group ids are made unique across rows so that one scatter serves all.
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    group = starts.flatten().cumsum(0) - 1
    position = torch.arange(length, device=x.device).repeat(rows)
    num_groups = int(group[-1]) + 1
    first = torch.full((num_groups, ), length, device=x.device)
    last = torch.zeros(num_groups, dtype=torch.long, device=x.device)
    first = first.scatter_reduce(0, group, position, reduce='amin')
    last = last.scatter_reduce(0, group, position, reduce='amax')
    mean_rank = (first + last).to(torch.float64) / 2 + 1
    ranks = torch.empty((rows, length), dtype=torch.float64, device=x.device)
    ranks.scatter_(1, order, mean_rank[group].view(rows, length))
    return ranks.view(shape)


def _pearson(a: Tensor, b: Tensor) -> Tensor:
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    denom = (a.square().sum(-1) * b.square().sum(-1)).sqrt()
    r = (a * b).sum(-1) / denom.clamp_min(torch.finfo(denom.dtype).tiny)
    return r.clamp(-1, 1)


@torch.no_grad()
def spc_per_image(pred: Tensor, target: Tensor) -> Tensor:
    """Spearman rank correlation of every image's map with its target.

    Args:
        pred (Tensor): Predicted maps, shape ``(N, P, h, w)`` (any trailing
            dimensions are flattened).
        target (Tensor): Ground-truth maps, broadcastable to ``pred``.

    Returns:
        Tensor: float64, shape ``(N, P)``; 0 where either map is constant.
    """
    pred, target = _flatten(pred, target)
    r = _pearson(average_ranks(pred), average_ranks(target))
    constant = (pred.amax(-1) == pred.amin(-1)) | (
        target.amax(-1) == target.amin(-1))
    return r.masked_fill(constant, 0.)


@torch.no_grad()
def mae_per_image(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error of every image's map.

    Args:
        pred (Tensor): Predicted maps, shape ``(N, P, h, w)``.
        target (Tensor): Ground-truth maps, broadcastable to ``pred``.

    Returns:
        Tensor: float64, shape ``(N, P)``.
    """
    pred, target = _flatten(pred, target)
    return (pred.double() - target.double()).abs().mean(-1)


def spc(pred: Tensor, target: Tensor) -> Tensor:
    """SPC per pattern: :func:`spc_per_image` averaged over images.

    Returns:
        Tensor: float64, shape ``(P, )``.
    """
    return spc_per_image(pred, target).mean(0)


def mae(pred: Tensor, target: Tensor) -> Tensor:
    """MAE per pattern: :func:`mae_per_image` averaged over images.

    Returns:
        Tensor: float64, shape ``(P, )``.
    """
    return mae_per_image(pred, target).mean(0)


def position_metrics(pred: Tensor,
                     target: Tensor,
                     patterns: Optional[Sequence[str]] = None
                     ) -> Dict[str, Tensor]:
    """SPC and MAE of every pattern, as a flat dict of scalar tensors.

    Args:
        pred (Tensor): Predicted maps, shape ``(N, P, h, w)``.
        target (Tensor): Ground-truth maps, broadcastable to ``pred``.
        patterns (Sequence[str], optional): Names of the P channels, used in
            the keys; None numbers them ``0 .. P-1``. Default: None.

    Returns:
        dict[str, Tensor]: ``{'spc_<name>': ..., 'mae_<name>': ...}``, each
        a float64 scalar in ``pred``'s device.
    """
    num = pred.shape[1] if pred.dim() >= 2 else 0
    names = [str(k) for k in range(num)] if patterns is None else list(
        patterns)
    if len(names) != num:
        raise ValueError(f'{len(names)} pattern names {names} for pred with '
                         f'{num} channels; give one name per channel')
    spcs, maes = spc(pred, target), mae(pred, target)
    out = {f'spc_{n}': spcs[k] for k, n in enumerate(names)}
    out.update({f'mae_{n}': maes[k] for k, n in enumerate(names)})
    return out
