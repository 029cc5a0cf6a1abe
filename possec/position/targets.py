"""Ground-truth position maps of PosENet, generated exactly at any size.

The five patterns of `How Much Position Information Do Convolutional Neural
Networks Encode? <https://arxiv.org/abs/2001.08248>`_ (Islam, Jia and Bruce,
ICLR 2020), with ``i`` the row and ``j`` the column of an ``h x w`` map, all
values in [0, 1]:

- ``'H'``: ``j / (w - 1)``, rises from left to right;
- ``'V'``: ``i / (h - 1)``, rises from top to bottom;
- ``'G'``: a Gaussian centred at ``((h - 1) / 2, (w - 1) / 2)`` with one
  standard deviation per axis, ``sigma * h`` along rows and ``sigma * w``
  along columns (so a non-square map gets an elliptic blob that spans it the
  way the round one spans a square map), min-max scaled to [0, 1];
- ``'HS'``: horizontal stripes, ``(1 + cos(2 pi periods (i + 0.5) / h)) / 2``,
  bright at the top (``i = 0`` is close to 1);
- ``'VS'``: vertical stripes, the same along ``j`` and ``w``.

The defaults (``sigma=0.5``, ``periods=2.5``) reproduce the reference maps.

A side of length 1 has no extent: ``'H'`` is 0.5 when ``w == 1`` and ``'V'``
is 0.5 when ``h == 1`` (the value at the centre of the span); a 1 x 1 ``'G'``
is 1 (its peak). The stripes need no special case.

Pure torch; no mmseg.
"""
import math
from collections import OrderedDict
from typing import Sequence, Tuple, Union

import torch
from torch import Tensor

PATTERNS = ('H', 'V', 'G', 'HS', 'VS')

_CACHE_SIZE = 32
# key -> (tensor of shape (P, h, w), its version counter when cached)
_cache: 'OrderedDict[tuple, Tuple[Tensor, int]]' = OrderedDict()


def check_patterns(patterns: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """Return ``patterns`` as a tuple of valid names, or raise ``ValueError``.

    Args:
        patterns (str | Sequence[str]): One name or several, each one of
            ``'H'``, ``'V'``, ``'G'``, ``'HS'``, ``'VS'``.

    Returns:
        tuple[str]: The names, in the given order.
    """
    if isinstance(patterns, str):
        patterns = (patterns, )
    patterns = tuple(patterns)
    if not patterns:
        raise ValueError(
            f'patterns is empty; expected one or more of {PATTERNS}')
    for name in patterns:
        if name not in PATTERNS:
            raise ValueError(
                f'unknown position pattern {name!r}; expected one of '
                f'{PATTERNS}')
    if len(set(patterns)) != len(patterns):
        raise ValueError(f'patterns {patterns} repeat a name; give each once')
    return patterns


def _check_size(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size) if isinstance(size, Sequence) else (size, )
    if len(size) != 2 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0
            for s in size):
        raise ValueError(
            f'size must be a positive int or a pair (h, w) of positive '
            f'ints, got {size!r}')
    return size


def _ramp(n: int) -> Tensor:
    """``k / (n - 1)`` for ``k`` in ``0 .. n-1``; 0.5 when ``n == 1``."""
    if n == 1:
        return torch.full((1, ), 0.5, dtype=torch.float64)
    return torch.arange(n, dtype=torch.float64) / (n - 1)


def _stripes(n: int, periods: float) -> Tensor:
    k = torch.arange(n, dtype=torch.float64)
    return (1 + torch.cos(2 * math.pi * periods * (k + 0.5) / n)) / 2


def _gaussian(h: int, w: int, sigma: float) -> Tensor:
    i = torch.arange(h, dtype=torch.float64)[:, None]
    j = torch.arange(w, dtype=torch.float64)[None, :]
    di = (i - (h - 1) / 2)**2 / (2 * (sigma * h)**2)
    dj = (j - (w - 1) / 2)**2 / (2 * (sigma * w)**2)
    g = torch.exp(-(di + dj))
    lo, hi = g.min(), g.max()
    if hi == lo:
        return torch.ones_like(g)
    return (g - lo) / (hi - lo)


def position_map(pattern: str,
                 size: Union[int, Sequence[int]],
                 sigma: float = 0.5,
                 periods: float = 2.5) -> Tensor:
    """Compute one position map in float64 on the CPU, without caching.

    Args:
        pattern (str): One of ``'H'``, ``'V'``, ``'G'``, ``'HS'``, ``'VS'``.
        size (int | tuple[int, int]): The map's ``(h, w)``; an int means a
            square map.
        sigma (float): Standard deviation of ``'G'`` as a fraction of the
            side, per axis. Default: 0.5.
        periods (float): Number of cosine periods of ``'HS'`` and ``'VS'``
            across the map. Default: 2.5.

    Returns:
        Tensor: The map, shape ``(h, w)``, values in [0, 1].
    """
    check_patterns(pattern)
    h, w = _check_size(size)
    if not sigma > 0:
        raise ValueError(f'sigma must be > 0 (a fraction of the side), '
                         f'got {sigma!r}')
    if pattern == 'H':
        return _ramp(w)[None, :].expand(h, w).clone()
    if pattern == 'V':
        return _ramp(h)[:, None].expand(h, w).clone()
    if pattern == 'G':
        return _gaussian(h, w, sigma)
    if pattern == 'HS':
        return _stripes(h, periods)[:, None].expand(h, w).clone()
    return _stripes(w, periods)[None, :].expand(h, w).clone()


def position_maps(patterns: Union[str, Sequence[str]] = PATTERNS,
                  size: Union[int, Sequence[int]] = 28,
                  batch_size: int = 1,
                  device: Union[str, torch.device, None] = None,
                  dtype: torch.dtype = torch.float32,
                  sigma: float = 0.5,
                  periods: float = 2.5) -> Tensor:
    """Batched position maps on a given device, cached per size and options.

    The maps are computed once per ``(patterns, size, device, dtype, sigma,
    periods)`` (a small least-recently-used cache) and returned as a view
    that broadcasts the cached tensor over the batch, so asking for them at
    every training step costs no computation and no copy.

    The result is read-only: call ``.clone()`` before writing into it. An
    in-place write into it raises when ``batch_size > 1``; when
    ``batch_size == 1`` it would reach the cached tensor, and the cache
    notices (through the tensor's version counter) and recomputes the maps
    the next time they are asked for, so a careless caller can corrupt only
    its own copy, never what others receive.

    Args:
        patterns (str | Sequence[str]): Pattern names, in channel order.
            Default: all five, ``('H', 'V', 'G', 'HS', 'VS')``.
        size (int | tuple[int, int]): The maps' ``(h, w)``. Default: 28.
        batch_size (int): Size of the leading dimension. Default: 1.
        device (str | torch.device | None): Where to put the maps; None means
            the CPU. Default: None.
        dtype (torch.dtype): Floating dtype of the maps. Default:
            torch.float32.
        sigma (float): See :func:`position_map`. Default: 0.5.
        periods (float): See :func:`position_map`. Default: 2.5.

    Returns:
        Tensor: Shape ``(batch_size, len(patterns), h, w)``.
    """
    patterns = check_patterns(patterns)
    size = _check_size(size)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive int, '
                         f'got {batch_size!r}')
    if not dtype.is_floating_point:
        raise ValueError(f'dtype must be a floating dtype, got {dtype}')
    device = torch.device('cpu' if device is None else device)
    key = (patterns, size, str(device), dtype, float(sigma), float(periods))
    hit = _cache.get(key)
    if hit is not None and hit[0]._version == hit[1]:
        _cache.move_to_end(key)
        maps = hit[0]
    else:
        # Normal tensors even under inference_mode, so that the maps can be
        # a loss target in a later autograd pass.
        with torch.inference_mode(False), torch.no_grad():
            maps = torch.stack([
                position_map(p, size, sigma=sigma, periods=periods)
                for p in patterns
            ]).to(device=device, dtype=dtype)
        _cache[key] = (maps, maps._version)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return maps.unsqueeze(0).expand(batch_size, -1, -1, -1)
