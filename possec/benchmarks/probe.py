"""Benchmark: possec's cached position probe against the naive loop.

The naive loop is how `How Much Position Information Do Convolutional
Neural Networks Encode? <https://arxiv.org/abs/2001.08248>`_ trains its
readout: the frozen encoder runs on every batch of every epoch, and each
pattern is trained separately. possec's probe runs the encoder once per
image and trains all patterns together on the cached features. Both run
here on the same images, split, batch order and initial readout weights
(each naive readout starts from its pattern's slice of the joint one), so
with a one-layer readout they compute the same thing and their SPC must
agree; only the time differs.
"""
from typing import Optional, Sequence

import numpy as np
import torch

from possec.position import PATTERNS
from ..analysis.common import build_offline
from ..analysis.probe import (FrozenEncoder, format_table, make_readout,
                              predict_readout, run_probe, score,
                              split_indices, train_readout)
from ..analysis.probe.readout import TRAIN_DEFAULTS
from .rows import row
from .runner import BenchmarkRunner
from .timing import format_table as format_times

TITLE = 'cached position probe vs the naive loop'
QUICK = dict(num_images=8, input_size=32, grid=8, epochs=2, batch_size=4,
             vgg_depth=11, repeats=1)


def naive_probe(encoder: FrozenEncoder, images: torch.Tensor,
                train_index: torch.Tensor, test_index: torch.Tensor,
                level_channels: Sequence[int],
                patterns: Sequence[str] = PATTERNS, grid: int = 28,
                train: Optional[dict] = None,
                score_size: Optional[int] = None, seed: int = 0,
                eval_batch: int = 16, device: str = 'cpu') -> dict:
    """The reference way: one readout per pattern, encoder every batch.

    Returns:
        dict: ``spc`` and ``mae`` per pattern.
    """
    joint = make_readout([sum(level_channels)], patterns, grid, seed=seed)
    opts = dict(TRAIN_DEFAULTS, **(train or {}))
    out = dict(spc={}, mae={})

    def features(index):
        return encoder(images[index].to(device))

    for k, pattern in enumerate(patterns):
        head = make_readout(level_channels, (pattern, ), grid, seed=seed)
        with torch.no_grad():
            head.conv_seg.weight.copy_(joint.conv_seg.weight[k:k + 1])
            head.conv_seg.bias.copy_(joint.conv_seg.bias[k:k + 1])
        train_readout(head, features, train_index, seed=seed, device=device,
                      progress=False, **opts)
        pred = predict_readout(head, features, test_index, eval_batch,
                               device)
        res = score(head, pred, score_size)
        out['spc'][pattern] = res['spc'][pattern]
        out['mae'][pattern] = res['mae'][pattern]
    return out


def run(num_images: int = 12,
        input_size: int = 224,
        grid: int = 28,
        epochs: int = 15,
        batch_size: int = 32,
        lr: float = 0.01,
        vgg_depth: int = 16,
        repeats: int = 2,
        seed: int = 0,
        device: str = 'cpu',
        threads: Optional[int] = None,
        spc_tolerance: float = 0.02,
        target: float = 10.) -> dict:
    """Time the cached probe and the naive loop on one VGG encoder.

    Args:
        num_images (int): Noise images (80% train, 20% held out). The naive
            loop takes about 16 s per image at 224x224 on 2 CPU cores, so
            the default keeps a round near 3 minutes. Default: 12.
        input_size (int): Their side. Default: 224.
        grid (int): Readout grid. Default: 28.
        epochs (int): Training epochs (lr step at 2/3 of them). Default: 15.
        batch_size (int): Training batch. Default: 32.
        lr (float): Learning rate. The paper's 0.1 makes the readout of a
            random-init VGG16 (1472 channels) diverge. Default: 0.01.
        vgg_depth (int): Depth of the random-init VGG encoder. Default: 16.
        repeats (int): Timed rounds, interleaved. Default: 2.
        seed (int): Seed of images, encoder, readouts. Default: 0.
        device (str): Where everything runs. Default: 'cpu'.
        threads (int, optional): ``torch.set_num_threads``. Default: None.
        spc_tolerance (float): Largest SPC difference accepted. Default:
            0.02.
        target (float): Smallest speed-up accepted. Default: 10.

    Returns:
        dict: ``times`` (of :func:`time_interleaved`, baseline naive),
        ``speedup``, ``spc`` and ``mae`` of both, ``max_spc_diff``,
        ``diverged`` (the cached readout's), ``passed`` and ``table``
        (markdown).
    """
    # no warm-up round (one costs as much as a timed round): the encoder's
    # forward below warms its kernels up
    runner = BenchmarkRunner(device, threads, seed, repeats, warmup=0)
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(
        rng.integers(0, 256, (num_images, 3, input_size, input_size),
                     np.uint8))
    vgg = build_offline(dict(type='PadVGG', depth=vgg_depth), seed)
    encoder = FrozenEncoder(vgg, name=f'vgg{vgg_depth}').to(device)
    train = dict(epochs=epochs, batch_size=batch_size, lr=lr,
                 lr_step=max(1, round(epochs * 2 / 3)))
    train_index, test_index = split_indices(num_images, 0.2, seed)
    with torch.no_grad():  # also warms the encoder's kernels up
        level_channels = [f.shape[1] for f in encoder(images[:2].to(device))]
    found = {}

    def cached():
        found['cached'] = run_probe(images, encoder, grid=grid, train=train,
                                    seed=seed, device=device, progress=False)

    def naive():
        found['naive'] = naive_probe(encoder, images, train_index,
                                     test_index, level_channels, grid=grid,
                                     train=train, score_size=input_size,
                                     seed=seed, device=device)

    times = runner.time(dict(naive=runner.unit(naive),
                             cached=runner.unit(cached)), baseline='naive')
    res = found['cached']['rows'][0]
    both = dict(column='probe', patterns=list(PATTERNS), rows=[
        dict(setting='cached (possec)', spc=res['spc'], mae=res['mae']),
        dict(setting='naive loop', **found['naive'])])
    diff = max(abs(res['spc'][p] - found['naive']['spc'][p])
               for p in PATTERNS)
    speedup = 1 / times['cached']['ratio']
    settings = dict(num_images=num_images, input_size=input_size, grid=grid,
                    epochs=epochs, batch_size=batch_size, lr=lr,
                    vgg_depth=vgg_depth, repeats=repeats, device=device,
                    threads=torch.get_num_threads())
    table = '\n\n'.join([
        format_times(times, 'wall time (ratio to the naive loop)'),
        format_table(both, 'SPC and MAE on the held-out images'),
        f'speed-up {speedup:.1f}x (target >= {target:g}x), largest SPC '
        f'difference {diff:.4f} (tolerance {spc_tolerance:g})' +
        (', but the readout diverged: lower --lr' if res['diverged'] else
         '')])
    return dict(settings=settings, times=times, speedup=speedup,
                spc=dict(cached=res['spc'], naive=found['naive']['spc']),
                mae=dict(cached=res['mae'], naive=found['naive']['mae']),
                max_spc_diff=diff, diverged=res['diverged'],
                passed=bool(speedup >= target and diff <= spc_tolerance
                            and not res['diverged']),
                table=table)


def report(result: dict, settings: dict) -> tuple:
    """The tables of :func:`run`; the speed-up and the SPC agreement
    against their targets."""
    return result['table'], [
        row('speed-up of the cached probe over the naive loop',
            result['speedup'], '{:.1f}x', '>= 10x', result['speedup'] >= 10),
        row('largest SPC difference, cached vs naive', result['max_spc_diff'],
            '{:.4f}', '<= 0.02', result['max_spc_diff'] <= 0.02),
    ]
