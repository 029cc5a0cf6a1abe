"""The probe's feature cache: a frozen encoder's features, extracted once.

The encoder of the position probe is frozen, so its features do not change
while the readout trains. They are computed once per image, each level
resized to the readout's grid and concatenated, and kept as one array of
shape ``(N, C_total, g, g)``: in memory when it fits a budget, otherwise in a
``numpy.memmap`` in a temporary folder, removed by :meth:`FeatureCache.close`.
"""
import os.path as osp
import shutil
import tempfile
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from mmengine.utils import ProgressBar
from torch import Tensor

from .data import ProbeError


def format_bytes(num: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if num < 1024 or unit == 'GiB':
            return f'{num:.1f} {unit}' if unit != 'B' else f'{int(num)} B'
        num /= 1024
    return f'{num:.1f} GiB'


class FeatureCache:
    """Features of ``num`` images, ``(num, C_total, g, g)`` float32.

    Args:
        num (int): Number of images.
        level_channels (Sequence[int]): Channels of each cached level, in
            order; ``C_total`` is their sum.
        grid (int): Side of the grid every level was resized to.
        budget_bytes (float): Largest in-memory cache; above it the cache
            goes to a memmap in a temporary folder.
        level_names (Sequence[str], optional): Names of the cached levels.
            Default: ``f1 .. fL``.
        verbose (bool): Print the cache size and place. Default: True.
    """

    def __init__(self, num: int, level_channels: Sequence[int], grid: int,
                 budget_bytes: float,
                 level_names: Optional[Sequence[str]] = None,
                 verbose: bool = True):
        self.level_channels = [int(c) for c in level_channels]
        self.level_names = list(level_names or [
            f'f{i + 1}' for i in range(len(self.level_channels))])
        self.shape = (num, sum(self.level_channels), grid, grid)
        self.nbytes = 4 * int(np.prod(self.shape))
        self._tmpdir = None
        on_disk = self.nbytes > budget_bytes
        if verbose:
            where = 'on disk (memmap)' if on_disk else 'in memory'
            print(f'feature cache: {" x ".join(map(str, self.shape))} '
                  f'float32 = {format_bytes(self.nbytes)}, {where} (budget '
                  f'{format_bytes(budget_bytes)})', flush=True)
        if on_disk:
            self._tmpdir = tempfile.mkdtemp(prefix='possec-probe-cache-')
            self.data = np.memmap(osp.join(self._tmpdir, 'features.f32'),
                                  dtype=np.float32, mode='w+',
                                  shape=self.shape)
        else:
            self.data = np.empty(self.shape, dtype=np.float32)

    @property
    def on_disk(self) -> bool:
        """Whether the features live in a memmap."""
        return self._tmpdir is not None

    def channels_of(self, levels: Sequence[str]) -> List[int]:
        """Channel indices of ``levels`` (names among :attr:`level_names`)."""
        starts = np.cumsum([0] + self.level_channels)
        out = []
        for name in levels:
            if name not in self.level_names:
                raise ProbeError(
                    f'unknown level {name!r}; the cached levels are '
                    f'{", ".join(self.level_names)}')
            k = self.level_names.index(name)
            out.extend(range(starts[k], starts[k + 1]))
        return out

    def read(self, index: Tensor,
             channels: Optional[Sequence[int]] = None) -> Tensor:
        """Features of images ``index`` (in that order; only ``channels``)."""
        index = np.asarray(index)
        order = np.argsort(index, kind='stable')  # memmaps read best sorted
        block = self.data[index[order]][np.argsort(order)]
        if channels is not None and len(channels) != self.shape[1]:
            block = block[:, channels]
        return torch.from_numpy(np.ascontiguousarray(block))

    def close(self) -> None:
        """Drop the features; remove the memmap's temporary folder."""
        if self._tmpdir is not None:
            self.data._mmap.close()
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self.data = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, '_tmpdir', None) is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


def extract_features(encoder: Callable[[Tensor], List[Tensor]],
                     images: Tensor,
                     resize: Callable[[List[Tensor]], List[Tensor]],
                     budget_bytes: float = 2 * 1024**3,
                     batch_size: int = 16,
                     device: str = 'cpu',
                     level_names: Optional[Sequence[str]] = None,
                     progress: bool = True) -> FeatureCache:
    """Run a frozen encoder over all images once and cache its features.

    The cache is allocated after the first batch, when the levels' channel
    counts are known, and its size is printed before the allocation.

    Args:
        encoder (callable): ``uint8`` images ``(B, 3, S, S)`` -> list of
            feature levels, each ``(B, C_l, h_l, w_l)``.
        images (Tensor): ``uint8`` images ``(N, 3, S, S)``.
        resize (callable): List of levels -> list of the same levels resized
            to the grid ``(B, C_l, g, g)``.
        budget_bytes (float): See :class:`FeatureCache`. Default: 2 GiB.
        batch_size (int): Images per encoder forward. Default: 16.
        device (str): Where the encoder runs. Default: 'cpu'.
        level_names (Sequence[str], optional): Names of the returned levels.
            Default: ``f1 .. fL``.
        progress (bool): Show a progress bar. Default: True.

    Returns:
        FeatureCache: The cached features, in the order of ``images``.
    """
    num = images.shape[0]
    cache = bar = None
    with torch.no_grad():
        for start in range(0, num, batch_size):
            batch = images[start:start + batch_size].to(device)
            levels = resize(encoder(batch))
            if cache is None:
                grid = levels[0].shape[-1]
                cache = FeatureCache(num, [lv.shape[1] for lv in levels],
                                     grid, budget_bytes, level_names,
                                     verbose=progress)
                bar = ProgressBar(num) if progress else None
            feats = torch.cat(levels, dim=1).float().cpu().numpy()
            cache.data[start:start + len(batch)] = feats
            if bar is not None:
                bar.update(len(batch))
    if bar is not None:
        print(flush=True)
    if cache.on_disk:
        cache.data.flush()
    return cache
