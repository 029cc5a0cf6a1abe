"""The position probe: how much absolute position a frozen encoder carries.

The measurement of `How Much Position Information Do Convolutional Neural
Networks Encode? <https://arxiv.org/abs/2001.08248>`_ (Islam, Jia and Bruce,
ICLR 2020), for any encoder of :mod:`.encoders`: a readout, the
position module of :class:`possec.models.decode_heads.PosENetHead`, is
trained on the frozen encoder's multi-level features to regress the
position maps of :mod:`possec.position.targets`, and is scored by SPC and
MAE on held-out images, at the input image's resolution as in the paper
(:mod:`.score`).

The encoder is frozen, so its features are extracted once, resized to the
readout's grid with the head's own code (:mod:`.cache`), and the
readout trains on the cache, all patterns at once: one output channel per
pattern, and a loss that sums the patterns' mean squared errors, so that
each channel of a one-layer readout receives exactly the gradient it would
receive trained alone. Training follows the paper: SGD with momentum 0.9
and weight decay 1e-4, 15 epochs, batch 32, learning rate ×0.1 at epoch 10.
The paper's learning rate 0.1 diverges on wide or large-valued features (a
random-init VGG16, a trained segmentor's backbone), so the default
``lr='auto'`` tries 0.1 first and, when that run diverges, trains a fresh
readout at a tenth of the rate (:data:`AUTO_LRS`); the rate used is
reported with the scores.
"""
import inspect
import itertools
import math
import warnings
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.utils import ProgressBar
from torch import Tensor

from possec.models.decode_heads import PosENetHead
from possec.position import PATTERNS, check_patterns, position_maps
from ..common import quiet_init_weights
from .cache import FeatureCache, extract_features
from .data import ProbeError
from .score import score

#: learning rates ``lr='auto'`` tries in turn until a run does not diverge
#: (the first is the paper's).
AUTO_LRS = (0.1, 0.01, 0.001)


def make_readout(in_channels: Sequence[int],
                 patterns: Sequence[str] = PATTERNS,
                 grid: int = 28,
                 num_convs: int = 1,
                 kernel_size: int = 3,
                 conv_padding: int = 0,
                 channels: int = 64,
                 seed: int = 0) -> PosENetHead:
    """The readout: a :class:`PosENetHead` reading every given level.

    Fed the cache (one level of ``sum(in_channels)`` channels already on the
    grid), the head's resize is the identity and its convolutions are the
    readout; fed the encoder's levels, the same weights make the full head.

    Args:
        in_channels (Sequence[int]): Channels of each level it reads.
        patterns (Sequence[str]): One output channel per pattern.
            Default: all five.
        grid (int): Side of the grid. Default: 28.
        num_convs (int): Readout depth. Default: 1.
        kernel_size (int): Readout kernel. Default: 3.
        conv_padding (int): Readout zero padding. Default: 0.
        channels (int): Hidden width when ``num_convs > 1``. Default: 64.
        seed (int): Seed of the initialisation. Default: 0.

    Returns:
        PosENetHead: Initialised with the head's own ``init_weights``.
    """
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = PosENetHead(
                in_channels=list(in_channels),
                channels=channels,
                in_index=list(range(len(in_channels))),
                patterns=check_patterns(patterns),
                grid_size=grid,
                num_convs=num_convs,
                kernel_size=kernel_size,
                conv_padding=conv_padding)
            quiet_init_weights(head)
    except ValueError as exc:
        raise ProbeError(str(exc)) from None
    return head


def readout_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Sum over patterns of each pattern's mean squared error."""
    return F.mse_loss(pred, target.expand_as(pred),
                      reduction='none').mean((0, 2, 3)).sum()


def readout_side(grid: int = 28, num_convs: int = 1, kernel_size: int = 3,
                 conv_padding: int = 0) -> int:
    """Side of the maps a readout of :func:`make_readout` predicts (each
    convolution takes ``kernel_size - 1 - 2 * conv_padding`` off)."""
    return grid - num_convs * (kernel_size - 1 - 2 * conv_padding)


def baseline_loss(patterns: Sequence[str], side: int) -> float:
    """:func:`readout_loss` of the best prediction that ignores its input:
    each pattern's map at its spatial mean, on ``side x side`` maps (the
    sum over patterns of each map's spatial variance). A readout whose
    training loss stays above it has learnt nothing (its sigmoid outputs
    saturated, say), and its SPC measures the readout, not the encoder.
    """
    maps = position_maps(check_patterns(patterns), (side, side))
    return float(maps.var((2, 3), unbiased=False).sum())


def train_readout(head: PosENetHead,
                  features: Callable[[Tensor], List[Tensor]],
                  train_index: Tensor,
                  epochs: int = 15,
                  batch_size: int = 32,
                  lr: float = 0.1,
                  momentum: float = 0.9,
                  weight_decay: float = 1e-4,
                  lr_step: int = 10,
                  seed: int = 0,
                  device: str = 'cpu',
                  progress: bool = True,
                  warn: bool = True) -> List[float]:
    """Train the readout, all its patterns at once.

    Args:
        head (PosENetHead): From :func:`make_readout`; trained in place.
        features (callable): Image indices -> the head's input levels: the
            cache (see :func:`cached_features`), or the encoder run anew.
        train_index (Tensor): Images to train on.
        epochs (int): Passes over the training images. Default: 15.
        batch_size (int): Images per step. Default: 32.
        lr (float): Initial learning rate. Default: 0.1.
        momentum (float): SGD momentum. Default: 0.9.
        weight_decay (float): SGD weight decay. Default: 1e-4.
        lr_step (int): Epoch from which the rate is ×0.1. Default: 10.
        seed (int): Seed of the batch order. Default: 0.
        device (str): Where the readout trains. Default: 'cpu'.
        progress (bool): Show a progress bar over epochs. Default: True.
        warn (bool): Warn when the run diverges. Default: True.

    Returns:
        list[float]: Mean training loss of every epoch. A run whose last
        epoch is worse than its first warns (see :func:`diverged`).
    """
    if not isinstance(lr, (int, float)):
        raise ProbeError(f"lr must be a number here (the probe's 'auto' is "
                         f'resolved by probe_cached), got {lr!r}')
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ProbeError(f'epochs and batch_size must be >= 1 and lr > 0, '
                         f'got {epochs}, {batch_size} and {lr}')
    head.to(device).train()
    optim = torch.optim.SGD(head.parameters(), lr=lr, momentum=momentum,
                            weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    bar = ProgressBar(epochs) if progress else None
    history = []
    for epoch in range(epochs):
        for group in optim.param_groups:
            group['lr'] = lr * (0.1 if epoch >= lr_step else 1.)
        order = train_index[torch.randperm(len(train_index), generator=gen)]
        total = 0.
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            pred = head([f.to(device) for f in features(idx)])
            loss = readout_loss(pred, head.targets(pred))
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += loss.item() * len(idx)
        history.append(total / len(order))
        if bar is not None:
            bar.update()
    if bar is not None:
        print(flush=True)
    if warn and diverged(history):
        warnings.warn(
            f'the readout diverged: training loss {history[0]:.4g} in the '
            f'first epoch, {history[-1]:.4g} in the last (sigmoid outputs '
            f'saturate, SPC and MAE mean little): lower the learning rate '
            f'(lr={lr:g}; e.g. 0.01 for the 1472 channels of a random-init '
            f'VGG16)')
    return history



#: The probe's training recipe, the one place it is written: the keyword
#: defaults of :func:`train_readout` (the paper's), with ``lr='auto'``
#: (:data:`AUTO_LRS`). The probe, its tool and its benchmark start from it.
TRAIN_DEFAULTS = dict(
    {k: p.default
     for k, p in inspect.signature(train_readout).parameters.items()
     if k in ('epochs', 'batch_size', 'momentum', 'weight_decay', 'lr_step')},
    lr='auto')

def diverged(history: Sequence[float]) -> bool:
    """Whether a training run ended with a worse (or non-finite) loss than
    its first epoch's."""
    return not math.isfinite(history[-1]) or history[-1] > history[0]


@torch.no_grad()
def predict_readout(head: PosENetHead,
                    features: Callable[[Tensor], List[Tensor]],
                    index: Tensor,
                    batch_size: int = 64,
                    device: str = 'cpu') -> Tensor:
    """Position maps ``(len(index), P, h, w)`` of the readout, eval mode."""
    head.to(device).eval()
    preds = [
        head([f.to(device) for f in features(index[s:s + batch_size])]).cpu()
        for s in range(0, len(index), batch_size)
    ]
    return torch.cat(preds)


def cached_features(cache: FeatureCache,
                    channels: Optional[Sequence[int]] = None
                    ) -> Callable[[Tensor], List[Tensor]]:
    """Image indices -> ``[features]`` read from the cache (one level of
    the given channels, all when None)."""
    return lambda index: [cache.read(index, channels)]


def probe_cached(cache: FeatureCache,
                 train_index: Tensor,
                 test_index: Tensor,
                 patterns: Sequence[str] = PATTERNS,
                 levels: Optional[Sequence[str]] = None,
                 readout: Optional[dict] = None,
                 train: Optional[dict] = None,
                 score_size: Optional[int] = None,
                 seed: int = 0,
                 device: str = 'cpu',
                 progress: bool = True) -> dict:
    """Train and score one readout on a cache.

    Args:
        cache (FeatureCache): The encoder's features.
        train_index (Tensor): Images to train on.
        test_index (Tensor): Held-out images to score on.
        patterns (Sequence[str]): Patterns. Default: all five.
        levels (Sequence[str], optional): Cached levels to read; None reads
            all. Default: None.
        readout (dict, optional): ``num_convs``, ``kernel_size``,
            ``conv_padding``, ``channels`` of :func:`make_readout`.
        train (dict, optional): Options of :func:`train_readout`; its
            ``lr`` may be ``'auto'`` (the default): :data:`AUTO_LRS` in
            turn until a run does not diverge.
        score_size (int, optional): See :func:`score`. Default: None.
        seed (int): Seed of initialisation and batch order. Default: 0.
        device (str): Where the readout trains. Default: 'cpu'.
        progress (bool): Show a progress bar. Default: True.

    Returns:
        dict: ``spc`` and ``mae`` (per pattern), ``loss`` (per epoch),
        ``lr`` (the rate used), ``diverged`` (see :func:`diverged`),
        ``pred`` (held-out maps) and ``head`` (the trained readout).
    """
    levels = list(levels or cache.level_names)
    chans = cache.channels_of(levels)
    if len(chans) == cache.shape[1]:
        chans = None
    opts = dict(TRAIN_DEFAULTS, **(train or {}))
    lr = opts.pop('lr')
    rates = AUTO_LRS if lr in (None, 'auto') else (lr, )
    feats = cached_features(cache, chans)
    for k, rate in enumerate(rates):
        head = make_readout([len(chans or range(cache.shape[1]))], patterns,
                            cache.shape[-1], seed=seed, **(readout or {}))
        last = k == len(rates) - 1
        loss = train_readout(head, feats, train_index, lr=rate, seed=seed,
                             device=device, progress=progress, warn=last,
                             **opts)
        if not diverged(loss) or last:
            break
        print(f'the readout diverged at lr {rate:g} (training loss '
              f'{loss[0]:.4g} -> {loss[-1]:.4g}); retrying at lr '
              f'{rates[k + 1]:g}', flush=True)
    pred = predict_readout(head, feats, test_index, device=device)
    return dict(score(head, pred, score_size), loss=loss, lr=rate,
                diverged=diverged(loss), pred=pred, head=head)


def extract(encoder, images: Tensor, grid: int = 28, **kwargs) -> FeatureCache:
    """:func:`.cache.extract_features` with the head's own resize.

    The levels are resized by a one-conv :class:`PosENetHead` over all of
    them (its ``_forward_feature`` then resizes and concatenates only), so
    the cache holds exactly what the head's convolutions would see.
    """
    heads = {}

    def resize(levels):
        key = tuple(lv.shape[1] for lv in levels)
        if key not in heads:
            heads[key] = make_readout(key, grid=grid, kernel_size=1)
        feats = heads[key]._forward_feature(levels)
        starts = [0] + list(itertools.accumulate(key))
        return [feats[:, a:b] for a, b in zip(starts[:-1], starts[1:])]

    return extract_features(encoder, images, resize, **kwargs)
