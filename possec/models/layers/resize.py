"""Bilinear resizing as two small matrix products.

Bilinear interpolation (without antialiasing) is separable: every output row
is a weighted sum of two input rows, every output column of two input
columns, with the same weights for every channel. So
``F.interpolate(x, size, mode='bilinear')`` equals ``A_h @ x @ A_w.T`` with
fixed interpolation matrices ``A_h`` (out_h x in_h) and ``A_w`` (out_w x
in_w). On CPU the product, and its backward, is faster than torch's kernel
for the wide, small maps a position readout resizes (the timings:
``docs/benchmarks.md``, "Results (CPU)").

The matrices are built by running ``F.interpolate`` itself on one-hot
columns, so their weights are torch's, including its clamping at the
borders; the results agree with ``F.interpolate`` up to float rounding.
"""
from functools import lru_cache
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


@lru_cache(maxsize=64)
def _matrix(in_size: int, out_size: int, align_corners: bool) -> Tensor:
    eye = torch.eye(in_size, dtype=torch.float64).view(
        in_size, 1, in_size, 1)
    cols = F.interpolate(eye, size=(out_size, 1), mode='bilinear',
                         align_corners=align_corners)
    return cols.view(in_size, out_size).t().contiguous()


def interp_matrix(in_size: int, out_size: int, align_corners: bool = False,
                  dtype: torch.dtype = torch.float32,
                  device=None) -> Tensor:
    """The (out_size, in_size) matrix of 1-D linear interpolation as
    ``F.interpolate(..., mode='bilinear')`` does it along one axis."""
    return _matrix(int(in_size), int(out_size), bool(align_corners)).to(
        dtype=dtype, device=device)


def bilinear_resize(x: Tensor, size: Sequence[int],
                    align_corners: bool = False) -> Tensor:
    """``F.interpolate(x, size, mode='bilinear', align_corners=...)`` for a
    4-D tensor, computed as ``A_h @ x @ A_w.T``.

    Args:
        x (Tensor): Input of shape (N, C, H, W), floating point.
        size (Sequence[int]): Output (height, width).
        align_corners (bool): As in ``F.interpolate``. Default: False.

    Returns:
        Tensor: Shape (N, C, size[0], size[1]).
    """
    if x.dim() != 4:
        raise ValueError(f'bilinear_resize expects (N, C, H, W), got shape '
                         f'{tuple(x.shape)}')
    out_h, out_w = _size(size)
    in_h, in_w = x.shape[-2:]
    a_h = interp_matrix(in_h, out_h, align_corners, x.dtype, x.device)
    a_w = interp_matrix(in_w, out_w, align_corners, x.dtype, x.device)
    return torch.matmul(torch.matmul(a_h, x), a_w.t())


def _size(size) -> Tuple[int, int]:
    out_h, out_w = (size, size) if isinstance(size, int) else tuple(size)
    return int(out_h), int(out_w)


#: Routes of :func:`resize_conv2d` for one level.
ROUTES = ('auto', 'direct', 'taps')


def resize_conv2d(feats: Sequence[Tensor],
                  weight: Tensor,
                  bias: Optional[Tensor],
                  size: Sequence[int],
                  align_corners: bool = False,
                  padding: int = 0,
                  route: str = 'auto') -> Tensor:
    """``F.conv2d(cat([resize(f) for f in feats]), weight, bias, padding)``
    without resizing the wide levels, where that is cheaper.

    A position readout (`PosENet <https://arxiv.org/abs/2001.08248>`_)
    resizes every backbone level to a common grid, concatenates them and
    applies one k x k convolution with few output channels. Convolution and
    bilinear resizing are both linear, and resizing acts on each channel
    alone, so for every level and every kernel tap ``t`` the channel mixing
    commutes with the resize::

        conv(resize(x))[o, p] = sum_t resize(W_t x)[o, p + t]

    where ``W_t`` is the (out, in) matrix of tap ``t``. Route ``'taps'``
    mixes the channels at the level's own resolution (a 1x1 convolution to
    ``out * k * k`` channels), resizes those few channels, zero-pads them
    (the padding comes after the resize, so this is exact) and adds the
    shifted taps. Route ``'direct'`` resizes the level (skipped when it is
    already on the grid) and convolves. Levels of the same native size
    share one resize of their summed mixed channels; the ``'direct'``
    levels are concatenated and convolved once. ``'auto'`` picks, per
    level, ``'taps'`` when the level has fewer positions than the output
    (it is upsampled; e.g. R-18-D8 at 64²: 8x8 levels read onto a 28x28
    grid) and ``'direct'`` otherwise (e.g. R50-D8 at 512²: 64x64 levels);
    the timings of both routes: ``docs/benchmarks.md``, "The position
    head's overhead". Both routes give the same numbers up to float
    rounding, and the same gradients for the features, the weight and the
    bias.

    Args:
        feats (Sequence[Tensor]): Levels of shape (N, C_i, h_i, w_i).
        weight (Tensor): Convolution weight (out, sum C_i, k, k).
        bias (Tensor, optional): Convolution bias (out,).
        size (Sequence[int]): The grid (height, width).
        align_corners (bool): Of the bilinear resize. Default: False.
        padding (int): Zero padding of the convolution. Default: 0.
        route (str): ``'auto'``, ``'direct'`` or ``'taps'`` (every level).
            Default: 'auto'.

    Returns:
        Tensor: Shape (N, out, H + 2 padding - k + 1, W + 2 padding - k + 1).
    """
    if route not in ROUTES:
        raise ValueError(f'unknown route {route!r}; expected one of '
                         f'{", ".join(map(repr, ROUTES))}')
    out_c, in_c, k_h, k_w = weight.shape
    if sum(f.shape[1] for f in feats) != in_c:
        raise ValueError(
            f'resize_conv2d: the levels have {[f.shape[1] for f in feats]} '
            f'channels (sum {sum(f.shape[1] for f in feats)}), the weight '
            f'expects {in_c}')
    grid_h, grid_w = _size(size)
    out_h = grid_h + 2 * padding - k_h + 1
    out_w = grid_w + 2 * padding - k_w + 1
    taps = k_h * k_w
    direct_x, direct_w = [], []
    mixed = {}  # native (h, w) -> sum of the levels' mixed channels
    start = 0
    for x in feats:
        chans = x.shape[1]
        w = weight[:, start:start + chans]
        start += chans
        if _route(x, (grid_h, grid_w), (out_h, out_w), route) == 'direct':
            if tuple(x.shape[-2:]) != (grid_h, grid_w):
                x = bilinear_resize(x, (grid_h, grid_w), align_corners)
            direct_x.append(x)
            direct_w.append(w)
        else:
            # (out, C, kh, kw) -> (out * kh * kw, C): out-major, tap-minor
            mix = w.permute(0, 2, 3, 1).reshape(out_c * taps, chans)
            z = torch.matmul(mix, x.flatten(2)).view(
                x.shape[0], out_c * taps, *x.shape[-2:])
            key = tuple(x.shape[-2:])
            mixed[key] = z if key not in mixed else mixed[key] + z
    total = None
    if direct_x:
        x = direct_x[0] if len(direct_x) == 1 else torch.cat(direct_x, 1)
        w = direct_w[0] if len(direct_w) == 1 else torch.cat(direct_w, 1)
        total = F.conv2d(x, w, bias, padding=padding)
        bias = None
    for z in mixed.values():
        if tuple(z.shape[-2:]) != (grid_h, grid_w):
            z = bilinear_resize(z, (grid_h, grid_w), align_corners)
        # tap t of output channel o is channel o * taps + t: a grouped
        # convolution with a one-hot kernel per tap adds the shifted taps
        picks = torch.eye(taps, dtype=z.dtype, device=z.device).view(
            1, taps, k_h, k_w).expand(out_c, taps, k_h, k_w)
        y = F.conv2d(z, picks, padding=padding, groups=out_c)
        total = y if total is None else total + y
    if bias is not None:
        total = total + bias.view(1, -1, 1, 1)
    return total


def _route(x: Tensor, grid: Tuple[int, int], out: Tuple[int, int],
           route: str) -> str:
    """The faster route for one level: ``'taps'`` when the level has fewer
    positions than the convolution's output (it is upsampled: mixing its
    channels at its own resolution is cheaper than convolving the resized
    level), else ``'direct'`` (mixing thousands of channels at more
    positions than the output costs more than the two interpolation
    products)."""
    if route != 'auto':
        return route
    h, w = x.shape[-2:]
    return 'taps' if h * w < out[0] * out[1] else 'direct'
