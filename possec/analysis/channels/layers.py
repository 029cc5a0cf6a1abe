"""Naming a layer of a segmentor, reading its pooled output, and
replacing some of its channels by their dataset means.

A layer is named ``NAME`` (a module of the segmentor, e.g.
``backbone.layer4``, whose output is a ``(N, C, H, W)`` tensor) or
``NAME[i]`` (element ``i`` of a module's tuple output, e.g. ``backbone[3]``,
the fourth level every mmseg backbone returns). The hooks work on any
mmseg segmentor: they are plain forward hooks of the named module.
"""
import contextlib
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from possec.errors import UserError

_SPEC = re.compile(r'^([A-Za-z_][\w.]*)(?:\[(-?\d+)\])?$')


def parse_layer(model: nn.Module, spec: str) -> Tuple[nn.Module,
                                                      Optional[int]]:
    """The module and output index that ``spec`` names.

    Raises:
        UserError: When ``spec`` is malformed or names no module.
    """
    match = _SPEC.match(spec or '')
    if match is None:
        raise UserError(f'layer {spec!r} is malformed: expected a module '
                        f'name such as backbone.layer4, or NAME[i] for '
                        f'element i of its outputs, such as backbone[3]')
    name, index = match.group(1), match.group(2)
    try:
        module = model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n.count('.') <= 1]
        raise UserError(f'layer {name!r} is not a module of the segmentor: '
                        f'expected one of {", ".join(names[1:25])}'
                        f'{" ..." if len(names) > 25 else ""}') from None
    return module, None if index is None else int(index)


def default_layer(model: nn.Module) -> str:
    """``backbone[i]``: the backbone level the decode head reads (its
    ``in_index``; the last one when it reads several)."""
    index = getattr(model.decode_head, 'in_index', -1)
    if isinstance(index, (list, tuple)):
        index = index[-1]
    if index < 0:
        index += len(getattr(model.backbone, 'out_indices', [0] * 4))
    return f'backbone[{index}]'


def _pick(output, index: Optional[int], spec: str) -> Tensor:
    value = output if index is None else output[index]
    if not isinstance(value, Tensor) or value.ndim != 4:
        what = type(value).__name__ if not isinstance(value, Tensor) \
            else f'a tensor of shape {tuple(value.shape)}'
        raise UserError(f'layer {spec!r} gives {what}: expected a feature '
                        f'map (N, C, H, W); name a module with one output, '
                        f'or NAME[i] for one element of a tuple output')
    return value


def _replace(output, index: Optional[int], value: Tensor):
    if index is None:
        return value
    out = list(output)
    out[index] = value
    return tuple(out) if isinstance(output, tuple) else out


@contextlib.contextmanager
def pooled(model: nn.Module, specs: Sequence[str]
           ) -> Iterator[Dict[str, List[Tensor]]]:
    """Collect the global average pool ``(N, C)`` of every named layer.

    Yields:
        dict: ``{spec: [pooled batch, ...]}``, filled by every forward pass
        inside the block.
    """
    store: Dict[str, List[Tensor]] = {s: [] for s in specs}
    handles = []
    for spec in specs:
        module, index = parse_layer(model, spec)

        def hook(_, __, output, spec=spec, index=index):
            store[spec].append(_pick(output, index, spec).float().mean(
                (2, 3)).cpu())

        handles.append(module.register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


class ChannelMeans:
    """Running per-channel mean of a layer's output over all its pixels
    (every image and position a forward pass sees), in float64."""

    def __init__(self) -> None:
        self.total: Optional[Tensor] = None
        self.count = 0

    def add(self, x: Tensor) -> None:
        """Add a ``(N, C, H, W)`` batch."""
        s = x.detach().double().sum((0, 2, 3)).cpu()
        self.total = s if self.total is None else self.total + s
        self.count += x.shape[0] * x.shape[2] * x.shape[3]

    @property
    def mean(self) -> Tensor:
        """The ``(C,)`` means so far."""
        if self.total is None:
            raise UserError('no pixels were seen: the dataset pass ran no '
                            'image through the layer')
        return self.total / self.count


@contextlib.contextmanager
def record_means(model: nn.Module, spec: str) -> Iterator[ChannelMeans]:
    """Accumulate the per-channel pixel means of layer ``spec``."""
    module, index = parse_layer(model, spec)
    means = ChannelMeans()
    handle = module.register_forward_hook(
        lambda _, __, out: means.add(_pick(out, index, spec)))
    try:
        yield means
    finally:
        handle.remove()


@contextlib.contextmanager
def ablate(model: nn.Module, spec: str, channels: Sequence[int],
           means: Tensor) -> Iterator[None]:
    """Replace ``channels`` of layer ``spec`` by their ``means`` (constant
    over images and positions) in every forward pass inside the block.

    Args:
        model (nn.Module): The segmentor.
        spec (str): The layer (see :func:`parse_layer`).
        channels (Sequence[int]): Channels to replace.
        means (Tensor): ``(C,)`` dataset means of all the layer's channels.
    """
    module, index = parse_layer(model, spec)
    idx = torch.as_tensor(list(channels), dtype=torch.long)

    def hook(_, __, output):
        x = _pick(output, index, spec)
        if len(means) != x.shape[1]:
            raise UserError(f'layer {spec!r} has {x.shape[1]} channels but '
                            f'{len(means)} means were given')
        if len(idx) == 0:
            return output
        x = x.clone()
        fill = means[idx].to(x)
        x[:, idx.to(x.device)] = fill.view(1, -1, 1, 1)
        return _replace(output, index, x)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
