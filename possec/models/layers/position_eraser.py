"""PositionEraser: take the position-dependent part out of a feature map.

A zero-padded network tells its positions apart because the border changes
the features near it: averaged over images, the feature at a pixel depends
on where the pixel is. That dependence is what a position readout (the
PosENet probe, a convolution over the features) reads. This layer removes
it: it keeps, per channel and per pixel, the running mean of the feature
over the training data, and replaces it by the channel's mean over all
pixels (``erase='mean'``): it subtracts the position-dependent part of the
mean and keeps the rest. Optionally it also rescales each pixel's
deviation to the channel's average spread (``erase='mean+scale'``), so
that the per-pixel variance does not vary with position either.

After the erasure, the expected feature is the same at every position, so
the expected output of a linear readout (a convolution of any kernel,
without padding of its own) is the same at every position: no linear
function of the features predicts position better than a constant, in
expectation over the data. (A readout that zero-pads the features finds
its own border, as it would on the features of a circular-padding
network.) The spatial average is kept, not subtracted: subtracting the
whole mean leaves the typical (background) pixel near the zero vector,
which a per-pixel L2 normalisation such as ParseNet's turns into noise of
unit norm.

In the terms of concept erasure (LEACE, `Belrose et al., NeurIPS 2023
<https://arxiv.org/abs/2306.03819>`_), the
features become linearly guarded against the position of the pixel, taken
as a categorical concept, the position-conditional means being equal. It
is a guarantee against linear readouts only: a nonlinear one may still read
position from higher moments; ``'mean+scale'`` also equalises the second
moment.
"""
import contextlib
import copy
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The values of ``erase``.
ERASE_MODES = ('mean', 'mean+scale')


class PositionEraser(nn.Module):
    """Replace the per-pixel running mean of every channel by its average
    over the pixels (and, with ``erase='mean+scale'``, equalise the
    per-pixel spread).

    The statistics are buffers, like BatchNorm's, updated in training mode
    by an exponential moving average of each batch's per-pixel mean and
    mean square (``momentum``), and used, detached, in training and in
    evaluation alike: the layer is an affine map per pixel with no
    gradient into its statistics. They are held on the grid of the first
    training batch (the buffers start empty and take that size; a loaded
    state dict brings its own size). A map of another size uses the
    statistics resampled in normalised coordinates (bilinear,
    ``align_corners=True``, so the corners stay on the corners), which is
    exact for the training size and an approximation otherwise; batches of
    another size are resampled to the stored grid before the update.
    Before the first training batch the layer is the identity, so a
    network with erasers computes exactly what it did without them until
    it has seen data.

    Args:
        channels (int): Channels of the map.
        erase (str): ``'mean'``: ``x - m + m̄``, where ``m`` is the
            pixel's running mean and ``m̄`` the channel's running mean
            averaged over the pixels; ``'mean+scale'``: ``(x - m) *
            sqrt((v̄ + eps) / (v + eps)) + m̄``, where ``v`` is the pixel's
            running variance and ``v̄`` its average over the pixels.
            Default: 'mean'.
        momentum (float, optional): Weight of each batch in the running
            statistics (the first batch sets them); None for the cumulative
            average of every batch seen (as BatchNorm's ``momentum=None``),
            which :func:`calibrate_erasers` uses. Default: 0.1.
        eps (float): Added to the variances. Default: 1e-5.
    """

    #: Buffers whose (grid) shape is the saved one's on load
    #: (:meth:`_load_from_state_dict`); possec's weight-fit check
    #: (:func:`possec.runtime.weights.check_weights_fit`) reads it.
    SHAPED_ON_LOAD = ('running_mean', 'running_sqr')

    def __init__(self,
                 channels: int,
                 erase: str = 'mean',
                 momentum: Optional[float] = 0.1,
                 eps: float = 1e-5):
        super().__init__()
        if erase not in ERASE_MODES:
            raise ValueError(f'unknown erase {erase!r}; expected one of '
                             f'{", ".join(map(repr, ERASE_MODES))}')
        if momentum is not None and not 0 < momentum <= 1:
            raise ValueError(f'momentum must be in (0, 1] or None, got '
                             f'{momentum}')
        self.channels = int(channels)
        self.erase = erase
        self.momentum = None if momentum is None else float(momentum)
        self.eps = float(eps)
        self.register_buffer('running_mean', torch.zeros(channels, 0, 0))
        self.register_buffer('running_sqr', torch.zeros(channels, 0, 0))
        self.register_buffer('num_batches_tracked',
                             torch.tensor(0, dtype=torch.long))

    @property
    def grid(self) -> Tuple[int, int]:
        """The size the statistics are held at ((0, 0) before any data)."""
        return tuple(self.running_mean.shape[1:])

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f'PositionEraser expected a (N, {self.channels},'
                             f' H, W) map, got shape {tuple(x.shape)}')

    @torch.no_grad()
    def _update(self, x: Tensor) -> None:
        x = x.to(self.running_mean.dtype)  # fp32 statistics under AMP
        mean = x.mean(0)
        sqr = (x * x).mean(0)
        if self.num_batches_tracked.item() == 0:
            # .data keeps the buffer objects (DDP holds references to them)
            self.running_mean.data = mean.clone()
            self.running_sqr.data = sqr.clone()
        else:
            if tuple(mean.shape[1:]) != self.grid:
                mean, sqr = _resample(torch.stack([mean, sqr]), self.grid)
            weight = self.momentum
            if weight is None:
                weight = 1.0 / (self.num_batches_tracked.item() + 1)
            self.running_mean.lerp_(mean, weight)
            self.running_sqr.lerp_(sqr, weight)
        self.num_batches_tracked.add_(1)

    def statistics(self, size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """The running mean and variance at ``size`` (C, H, W each)."""
        mean, sqr = self.running_mean, self.running_sqr
        if tuple(size) != self.grid:
            mean, sqr = _resample(torch.stack([mean, sqr]), tuple(size))
        return mean, (sqr - mean * mean).clamp_min(0)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (N, C, H, W) with the position-dependent part of its mean
        removed."""
        self._check(x)
        if self.training:
            self._update(x.detach())
        if not self.running_mean.numel():  # no data seen (no device sync)
            return x
        mean, var = self.statistics(x.shape[2:])
        out = x - mean.to(x.dtype)
        if self.erase == 'mean+scale':
            ref = var.mean((1, 2), keepdim=True)
            out = out * ((ref + self.eps) / (var + self.eps)).sqrt().to(
                x.dtype)
        return out + mean.mean((1, 2), keepdim=True).to(x.dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # take the saved grid's size before the copy checks shapes
        for name in self.SHAPED_ON_LOAD:
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                getattr(self, name).data = torch.empty_like(
                    saved, device=getattr(self, name).device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f'{self.channels}, erase={self.erase!r}, '
                f'momentum={self.momentum}, grid={self.grid}')


def position_erasers(model: nn.Module) -> List[PositionEraser]:
    """Every :class:`PositionEraser` in ``model``."""
    return [m for m in model.modules() if isinstance(m, PositionEraser)]


@contextlib.contextmanager
def _calibrating(model: nn.Module,
                 erasers: List[PositionEraser]) -> Iterator[None]:
    modes = [m.training for m in model.modules()]
    momenta = [e.momentum for e in erasers]
    try:
        model.eval()
        for e in erasers:
            e.train()
            e.momentum = None
            e.num_batches_tracked.zero_()
        yield
    finally:
        for module, mode in zip(model.modules(), modes):
            module.training = mode
        for e, momentum in zip(erasers, momenta):
            e.momentum = momentum


@torch.no_grad()
def calibrate_erasers(model: nn.Module, batches: Iterable,
                      forward: Optional[Callable] = None) -> int:
    """Recompute the statistics of every eraser in ``model`` for its
    current weights, as the plain average over ``batches``.

    During training the statistics follow a network whose weights move, so
    they lag behind it; a remaining per-pixel offset is itself a code of
    position (with more channels than pixels, a linear readout can map any
    fixed per-pixel offsets to the position maps). This is the erasers'
    counterpart of precise BatchNorm statistics: the model runs in eval
    mode (BatchNorm uses its running statistics) with only the erasers
    collecting, every batch weighted equally.

    Args:
        model (nn.Module): The model; its training flags are restored.
        batches (Iterable): Inputs to ``forward``.
        forward (Callable, optional): ``forward(batch)`` runs the part of
            the model holding the erasers. Default: ``model(batch)``.

    Returns:
        int: The number of batches averaged.

    Raises:
        ValueError: ``batches`` is empty (the statistics are left as they
            were, as on any error).
    """
    forward = forward or model
    erasers = position_erasers(model)
    saved = [copy.deepcopy(e.state_dict()) for e in erasers]
    count = 0
    try:
        with _calibrating(model, erasers):
            for batch in batches:
                forward(batch)
                count += 1
        if erasers and not count:
            raise ValueError('calibrate_erasers got no batches; expected at '
                             'least one (is the data loader empty?)')
    except BaseException:
        for e, state in zip(erasers, saved):
            e.load_state_dict(state)
        raise
    return count


def _resample(stats: Tensor, size: Tuple[int, int]) -> Tensor:
    """Bilinear resampling of (K, C, h, w) statistics to ``size``, corners
    on corners."""
    return F.interpolate(stats, size=size, mode='bilinear',
                         align_corners=True)
