"""Theoretical receptive fields, derived from the architecture by tracing.

A unit's theoretical receptive field is the set of input pixels that can
influence it. For a chain of convolutions and pools it follows from the
kernel size k, stride s, dilation d and padding p of each layer, per axis:
``r_out = r_in + (k - 1) d j_in``, ``j_out = j_in s`` and, for the centre of
the first unit, ``c_out = c_in + ((k - 1) d / 2 - p) j_in`` (r: field size,
j: distance between neighbouring units, both in input pixels), as used by
`ParseNet <https://arxiv.org/abs/1506.04579>`_ to compare FCN's theoretical
field with its empirical one.

:func:`theoretical_field` applies these rules to a real network without
knowing its code: it runs one forward pass under a
:class:`torch.overrides.TorchFunctionMode` that sees every torch operation
and carries a :class:`Field` along with every tensor that depends on the
input. The rules:

- ``conv2d``, ``max_pool2d``, ``avg_pool2d``: the formulas above;
  ``pad`` and spatial slicing (``x[..., a:b, c:d]``) move the centre;
- ``interpolate``: the centre follows the sampling formula and the field
  grows by two input units (bilinear, nearest) or four (bicubic), an upper
  bound;
- operations that keep the last two (spatial) dimensions (activations,
  norms, channel sums, concatenation along channels, residual additions)
  take the union of their inputs' fields;
- reductions over the spatial dimensions (``mean``, adaptive pooling to
  1x1, ...) make the field *global*: every pixel can influence every unit
  (ParseNet's global branch). A global field keeps its local part (the
  union of the non-global inputs), so a head that fuses local features with
  a global vector reports both;
- any other operation that changes the spatial dimensions or mixes
  positions (matrix products, reshapes, flips, rolls, ``grid_sample``) is
  taken as global too, an upper bound, and is named in ``Field.unmodelled``.

The theoretical field is always a superset of what a unit can see, so an
empirical field must lie inside it.
"""
import dataclasses
import weakref
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

Pair = Tuple[float, float]

_REDUCTIONS = {'mean', 'sum', 'amax', 'amin', 'max', 'min', 'std', 'var',
               'norm', 'logsumexp', 'prod', 'nansum', 'nanmean', 'median',
               'adaptive_avg_pool2d', 'adaptive_max_pool2d'}
_MIXING = {'flip', 'fliplr', 'flipud', 'roll', 'rot90', 'grid_sample',
           'transpose', 'permute', 'swapaxes', 'swapdims', 'movedim', 't',
           'cumsum', 'cumprod', 'sort', 'argsort', 'unfold', 'fold'}


@dataclasses.dataclass(frozen=True)
class Field:
    """The theoretical receptive field of the units of a feature map.

    Units lie on a regular grid: unit ``(u, v)`` is centred on input pixel
    ``(start[0] + u * jump[0], start[1] + v * jump[1])`` and sees a
    ``size[0] x size[1]`` window around it (before clipping to the image).

    Args:
        size (tuple[float], optional): Local field (rows, columns) in
            input pixels; None when the map has no local part (a pooled
            global vector). Default: (1, 1).
        jump (tuple[float]): Input pixels between neighbouring units.
            Default: (1, 1).
        start (tuple[float]): Centre of unit (0, 0) in input pixels.
            Default: (0, 0).
        is_global (bool): Whether every input pixel can influence every
            unit. Default: False.
        unmodelled (tuple[str]): Operations taken as global because the
            tracer has no rule for them. Default: ().
    """
    size: Optional[Pair] = (1., 1.)
    jump: Pair = (1., 1.)
    start: Pair = (0., 0.)
    is_global: bool = False
    unmodelled: Tuple[str, ...] = ()

    def centre(self, unit: Sequence[int]) -> Pair:
        """Input pixel (row, column) at the centre of ``unit``."""
        return tuple(s + u * j
                     for s, u, j in zip(self.start, unit, self.jump))

    def box(self, unit: Sequence[int],
            shape: Optional[Sequence[int]] = None) -> Optional[tuple]:
        """Local field of ``unit`` as inclusive pixel bounds ``(y0, x0, y1,
        x1)``, clipped to an image of ``shape`` (H, W) if given; None when
        there is no local part."""
        if self.size is None:
            return None
        (cy, cx), (ry, rx) = self.centre(unit), self.size
        box = [cy - (ry - 1) / 2, cx - (rx - 1) / 2,
               cy + (ry - 1) / 2, cx + (rx - 1) / 2]
        if shape is not None:
            h, w = shape
            box = [max(box[0], 0), max(box[1], 0), min(box[2], h - 1),
                   min(box[3], w - 1)]
        return tuple(float(b) for b in box)

    def unit_at(self, pixel: Sequence[float],
                grid: Sequence[int]) -> Tuple[int, int]:
        """The unit of a ``grid`` (h, w) map whose centre is nearest to
        input ``pixel`` (row, column)."""
        return tuple(
            int(min(max(round((p - s) / j), 0), n - 1))
            for p, s, j, n in zip(pixel, self.start, self.jump, grid))


def _union(fields: Sequence[Field]) -> Field:
    local = [f for f in fields if f.size is not None]
    is_global = any(f.is_global for f in fields)
    notes = tuple(dict.fromkeys(n for f in fields for n in f.unmodelled))
    if not local:
        return Field(None, fields[0].jump, fields[0].start, True, notes)
    size, start = [], []
    for axis in (0, 1):
        lo = min(f.start[axis] - (f.size[axis] - 1) / 2 for f in local)
        hi = max(f.start[axis] + (f.size[axis] - 1) / 2 for f in local)
        size.append(hi - lo + 1)
        start.append((lo + hi) / 2)
    jump = tuple(max(f.jump[a] for f in local) for a in (0, 1))
    return Field(tuple(size), jump, tuple(start), is_global, notes)


def _globalise(field: Field, note: Optional[str] = None) -> Field:
    notes = field.unmodelled + ((note,) if note and
                                note not in field.unmodelled else ())
    return dataclasses.replace(field, is_global=True, unmodelled=notes)


def _pairs(*values):
    return [(v, v) if isinstance(v, (int, float)) else tuple(v)
            for v in values]


def _window(field: Field, kernel, stride, padding, dilation=1) -> Field:
    """A sliding window (conv or pool) applied to ``field``'s map."""
    kernel, stride, dilation = _pairs(kernel, stride, dilation)
    if isinstance(padding, str):  # 'valid' or 'same' (stride 1, odd k)
        padding = (0, 0) if padding == 'valid' else tuple(
            d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    padding = _pairs(padding)[0]
    size, jump, start = [], [], []
    for a in (0, 1):
        j = field.jump[a]
        if field.size is not None:
            size.append(field.size[a] + (kernel[a] - 1) * dilation[a] * j)
        start.append(field.start[a] +
                     ((kernel[a] - 1) * dilation[a] / 2 - padding[a]) * j)
        jump.append(j * stride[a])
    return dataclasses.replace(
        field, size=tuple(size) if field.size is not None else None,
        jump=tuple(jump), start=tuple(start))


def _arg(args, kwargs, index, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _conv(field, args, kwargs, out):
    weight = _arg(args, kwargs, 1, 'weight')
    return _window(field, tuple(weight.shape[-2:]),
                   _arg(args, kwargs, 3, 'stride', 1),
                   _arg(args, kwargs, 4, 'padding', 0),
                   _arg(args, kwargs, 5, 'dilation', 1))


def _max_pool(field, args, kwargs, out):
    kernel = _arg(args, kwargs, 1, 'kernel_size')
    stride = _arg(args, kwargs, 2, 'stride') or kernel
    return _window(field, kernel, stride, _arg(args, kwargs, 3, 'padding', 0),
                   _arg(args, kwargs, 4, 'dilation', 1))


def _avg_pool(field, args, kwargs, out):
    kernel = _arg(args, kwargs, 1, 'kernel_size')
    stride = _arg(args, kwargs, 2, 'stride') or kernel
    return _window(field, kernel, stride, _arg(args, kwargs, 3, 'padding', 0))


def _pad(field, args, kwargs, out):
    pad = list(_arg(args, kwargs, 1, 'pad')) + [0, 0, 0, 0]
    left, top = pad[0], pad[2]
    start = (field.start[0] - top * field.jump[0],
             field.start[1] - left * field.jump[1])
    return dataclasses.replace(field, start=start)


def _interpolate(field, args, kwargs, out):
    x = args[0]
    mode = _arg(args, kwargs, 3, 'mode', 'nearest')
    corners = bool(_arg(args, kwargs, 4, 'align_corners', False))
    grow = 4 if mode == 'bicubic' else 2
    size, jump, start = [], [], []
    for a, (n, m) in enumerate(zip(x.shape[-2:], out.shape[-2:])):
        j = field.jump[a]
        if corners:
            scale = (n - 1) / (m - 1) if m > 1 else 0.
            start.append(field.start[a])
        else:
            scale = n / m
            start.append(field.start[a] + (0.5 * scale - 0.5) * j)
        jump.append(j * scale)
        if field.size is not None:
            size.append(field.size[a] + grow * j)
    return dataclasses.replace(
        field, size=tuple(size) if field.size is not None else None,
        jump=tuple(jump), start=tuple(start))


def _getitem(field, args, kwargs, out):
    x, index = args[0], args[1]
    index = index if isinstance(index, tuple) else (index,)
    if any(i is None or isinstance(i, (Tensor, list, bool)) for i in index):
        return None
    if Ellipsis in index:
        at = index.index(Ellipsis)
        fill = (slice(None),) * (x.dim() - len(index) + 1)
        index = index[:at] + fill + index[at + 1:]
    index = index + (slice(None),) * (x.dim() - len(index))
    spatial = index[-2:]
    if not all(isinstance(i, slice) for i in spatial):
        return None
    start, jump = [], []
    for a, (sl, n) in enumerate(zip(spatial, x.shape[-2:])):
        first, _, step = sl.indices(n)
        start.append(field.start[a] + first * field.jump[a])
        jump.append(field.jump[a] * step)
    return dataclasses.replace(field, start=tuple(start), jump=tuple(jump))


_RULES = {
    torch.conv2d: _conv,
    F.max_pool2d: _max_pool,
    F.max_pool2d_with_indices: _max_pool,
    torch.max_pool2d: _max_pool,
    F.avg_pool2d: _avg_pool,
    F.pad: _pad,
    torch._C._nn.pad: _pad,
    F.interpolate: _interpolate,
    Tensor.__getitem__: _getitem,
}


class _FieldTracer(TorchFunctionMode):
    """Carries a :class:`Field` along with every input-dependent tensor."""

    def __init__(self):
        super().__init__()
        self.fields = {}

    def tag(self, tensor: Tensor, field: Field) -> None:
        self.fields[id(tensor)] = (weakref.ref(tensor), field)

    def field(self, tensor) -> Optional[Field]:
        entry = self.fields.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1]

    def _inputs(self, args, kwargs):
        found = []

        def visit(value):
            if isinstance(value, Tensor):
                field = self.field(value)
                if field is not None:
                    found.append((value, field))
            elif isinstance(value, (list, tuple)):
                for item in value:
                    visit(item)
        visit(args)
        visit(list(kwargs.values()))
        return found

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if isinstance(out, Tensor):
            outs = [out]
        elif isinstance(out, (tuple, list)):
            outs = [o for o in out if isinstance(o, Tensor)]
        else:
            return out
        inputs = self._inputs(args, kwargs) if outs else None
        if not inputs:
            return out
        for tensor in outs:
            self.tag(tensor, self._rule(func, args, kwargs, inputs, tensor))
        return out

    def _rule(self, func, args, kwargs, inputs, out) -> Field:
        name = getattr(func, '__name__', repr(func)).strip('_')
        merged = _union([f for _, f in inputs])
        if merged.size is None:  # derived from global vectors only
            return merged
        rule = _RULES.get(func)
        if rule is not None and args and isinstance(args[0], Tensor) and \
                self.field(args[0]) is not None:
            field = rule(self.field(args[0]), args, kwargs, out)
            if field is not None:
                return field
        spatial = {tuple(t.shape[-2:]) for t, _ in inputs if t.dim() >= 2}
        same = (out.dim() >= 2 and len(spatial) == 1
                and tuple(out.shape[-2:]) in spatial
                and all(t.dim() >= 2 for t, _ in inputs))
        if same and name not in _MIXING:
            return merged
        if name in _REDUCTIONS:  # over all positions: no local part left
            return dataclasses.replace(_globalise(merged), size=None)
        return _globalise(merged, name)


def theoretical_field(fn: Callable, x: Tensor):
    """Trace ``fn(x)`` and return the theoretical field of its output.

    Args:
        fn (Callable): Maps an image batch ``(N, C, H, W)`` to a tensor, or
            to a tuple or list of tensors (e.g. a backbone's levels).
        x (Tensor): An input batch; only its shape matters to the result,
            but it is run through ``fn`` (use a small batch).

    Returns:
        Field | list[Field]: The field of each output's units, in pixels of
        ``x``; a list when ``fn`` returns several tensors.

    Example:
        >>> import torch.nn as nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1),
        ...                     nn.MaxPool2d(2), nn.Conv2d(4, 4, 3))
        >>> field = theoretical_field(net, torch.rand(1, 3, 16, 16))
        >>> field.size, field.jump, field.start
        ((8.0, 8.0), (2.0, 2.0), (2.5, 2.5))
    """
    tracer = _FieldTracer()
    with torch.no_grad(), tracer:
        tracer.tag(x, Field())
        out = fn(x)
    outs = [out] if isinstance(out, Tensor) else list(out)
    fields = []
    for tensor in outs:
        field = tracer.field(tensor)
        if field is None:
            raise ValueError(
                'the output does not depend on the input, or its dependence '
                'was lost (an operation outside torch, e.g. numpy); cannot '
                'derive a receptive field')
        fields.append(field)
    return fields[0] if isinstance(out, Tensor) else fields
