"""Distance-to-border bands and per-band confusion counts (pure torch).

A pixel at column ``x`` and row ``y`` of an ``H x W`` image lies at distance
``d = min(x, y, W - 1 - x, H - 1 - y)`` from the image border (0 on the
outermost ring). Bands are half-open intervals ``[lo, hi)`` of ``d``, in
pixels or in fractions of the short side ``S = min(H, W)``; together they
must cover every pixel exactly once.
"""
import math
from numbers import Real
from typing import List, Optional, Sequence, Tuple

import torch

BAND_UNITS = ('pixel', 'fraction')
# d never exceeds (S - 1) / 2, so a fraction band starting at 1/2 is empty.
_MAX_FRACTION = 0.5

Band = Tuple[float, Optional[float]]


def _check_unit(unit: str) -> str:
    if unit not in BAND_UNITS:
        raise ValueError(f'unknown band_unit {unit!r}; expected one of '
                         f'{BAND_UNITS}')
    return unit


def _check_edge(value, unit: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or \
            not math.isfinite(value):
        raise ValueError(f'band {what} must be a finite number, got '
                         f'{value!r}')
    if value < 0:
        raise ValueError(f'band {what} must be >= 0 (d counts pixels from '
                         f'the border), got {value!r}')
    if unit == 'pixel' and value != int(value):
        raise ValueError(f'pixel bands take whole pixels, got {what} '
                         f'{value!r}; use band_unit=\'fraction\' for '
                         f'fractions of the short side')
    return int(value) if unit == 'pixel' else float(value)


def parse_bands(bands: Sequence[Sequence], unit: str = 'pixel') -> List[Band]:
    """Validate a band specification and return it as ``(lo, hi)`` tuples.

    Args:
        bands (Sequence[tuple]): Half-open intervals ``(lo, hi)`` of the
            distance to the border; ``hi=None`` means "to the image centre".
            They must be sorted, start at 0, touch without gap or overlap
            (each ``lo`` equals the previous ``hi``) and end with
            ``hi=None``, so that every pixel falls in exactly one band.
        unit (str): ``'pixel'`` (whole pixels) or ``'fraction'`` (of the
            short side; every ``lo`` below 0.5). Default: 'pixel'.

    Returns:
        list[tuple]: The bands, ints for pixels, floats for fractions.
    """
    _check_unit(unit)
    expected = ('expected sorted, touching half-open intervals such as '
                '[(0, 8), (8, 16), (16, None)]')
    if isinstance(bands, (str, bytes)) or not isinstance(bands, Sequence) \
            or len(bands) == 0:
        raise ValueError(f'bands must be a non-empty list of (lo, hi) '
                         f'pairs, got {bands!r}; {expected}')
    parsed: List[Band] = []
    for i, band in enumerate(bands):
        if isinstance(band, (str, bytes)) or not isinstance(band, Sequence) \
                or len(band) != 2:
            raise ValueError(f'band {i} must be a pair (lo, hi), got '
                             f'{band!r}; {expected}')
        lo = _check_edge(band[0], unit, 'start')
        hi = None if band[1] is None else _check_edge(band[1], unit, 'end')
        if hi is not None and hi <= lo:
            raise ValueError(f'band {i} {tuple(band)!r} is empty: expected '
                             f'lo < hi')
        if unit == 'fraction' and lo >= _MAX_FRACTION:
            raise ValueError(f'band {i} {tuple(band)!r} starts at a fraction '
                             f'>= 0.5 of the short side and can hold no '
                             f'pixel (d <= (S - 1) / 2); expected every '
                             f'start below 0.5')
        parsed.append((lo, hi))
    starts = [lo for lo, _ in parsed]
    if starts != sorted(starts):
        raise ValueError(f'bands are unsorted: their starts are {starts}; '
                         f'{expected}')
    if parsed[0][0] != 0:
        raise ValueError(f'the first band must start at 0, got '
                         f'{parsed[0]!r}: pixels nearer the border would be '
                         f'in no band')
    for i in range(1, len(parsed)):
        (prev_lo, prev_hi), (lo, hi) = parsed[i - 1], parsed[i]
        if prev_hi is None or lo < prev_hi:
            raise ValueError(f'bands overlap: band {i} {(lo, hi)!r} starts '
                             f'before band {i - 1} {(prev_lo, prev_hi)!r} '
                             f'ends; {expected}')
        if lo > prev_hi:
            raise ValueError(f'gap between bands: band {i - 1} '
                             f'{(prev_lo, prev_hi)!r} ends at {prev_hi} but '
                             f'band {i} {(lo, hi)!r} starts at {lo}; every '
                             f'pixel must fall in exactly one band, '
                             f'{expected}')
    if parsed[-1][1] is not None:
        raise ValueError(f'the last band must be open-ended (hi=None) so that '
                         f'every pixel falls in a band, got {parsed[-1]!r}')
    return parsed


def band_name(band: Band, unit: str) -> str:
    """A metric-key-friendly name: ``band0_8``, ``band32_inf`` (pixels),
    ``band0pct_5pct``, ``band25pct_inf`` (fractions, as percentages)."""
    _check_unit(unit)

    def edge(value):
        if value is None:
            return 'inf'
        if unit == 'pixel':
            return str(value)
        return f'{round(100 * value, 6):g}'.replace('.', 'p') + 'pct'

    return f'band{edge(band[0])}_{edge(band[1])}'


def _axis_band(length: int, starts: torch.Tensor) -> torch.Tensor:
    """Band index of ``min(i, length - 1 - i)`` for each i of one axis."""
    idx = torch.arange(length)
    dist = torch.minimum(idx, length - 1 - idx)
    return torch.bucketize(dist.double(), starts, right=True)


def band_index_map(height: int, width: int, bands: Sequence[Band],
                   unit: str = 'pixel') -> torch.Tensor:
    """Band index (int64, ``height x width``) of every pixel of an image.

    Band ``k`` holds the pixels with ``lo_k <= d < hi_k`` (``lo_k * S <= d <
    hi_k * S`` for fractions, ``S = min(height, width)``, with a 1e-9
    tolerance against rounding). Since the band index grows with ``d`` and
    ``d`` is the smaller of a row and a column distance, the map is the
    element-wise minimum of a per-row and a per-column band index.
    """
    _check_unit(unit)
    scale = 1 if unit == 'pixel' else min(height, width)
    starts = torch.tensor(
        [math.ceil(lo * scale - 1e-9) for lo, _ in bands[1:]],
        dtype=torch.float64)
    rows = _axis_band(height, starts)
    cols = _axis_band(width, starts)
    return torch.minimum(rows[:, None], cols[None, :])


def band_areas(pred: torch.Tensor, label: torch.Tensor,
               band_offset: torch.Tensor, num_bands: int, num_classes: int,
               ignore_index: int) -> torch.Tensor:
    """Per-band intersection, prediction and label areas of one image.

    The counts follow mmseg's ``IoUMetric.intersect_and_union`` exactly:
    pixels whose label is ``ignore_index`` are dropped; a prediction or
    label outside ``[0, num_classes)`` counts in no class of its own but
    still lets the other one count. One ``torch.bincount`` over
    ``(band, label slot, prediction slot)`` gives all bands at once.

    Args:
        pred (Tensor): Predicted class indices, ``(H, W)``, integer.
        label (Tensor): Ground-truth class indices, ``(H, W)``, integer.
        band_offset (Tensor): ``band_index_map * (num_classes + 2) ** 2``
            for this image size, int64, on ``pred``'s device.
        num_bands (int): Number of bands.
        num_classes (int): Number of classes.
        ignore_index (int): Label value to ignore.

    Returns:
        Tensor: int64 ``(3, num_bands, num_classes)``: intersection,
        prediction area and label area per band and class.
    """
    if pred.shape != label.shape or pred.shape != band_offset.shape:
        raise ValueError(f'prediction {tuple(pred.shape)}, label '
                         f'{tuple(label.shape)} and band map '
                         f'{tuple(band_offset.shape)} must have the same '
                         f'(H, W) shape')
    # Slots: 0..C-1 classes, C "outside the class range", C+1 "ignored".
    outside, ignored, slots = num_classes, num_classes + 1, num_classes + 2
    label = label.long()
    gt = torch.where((label >= 0) & (label < num_classes), label, outside)
    gt = gt.masked_fill_(label == ignore_index, ignored)
    pred = pred.long()
    lo, hi = torch.aminmax(pred)
    if lo < 0 or hi >= num_classes:
        pred = torch.where((pred >= 0) & (pred < num_classes), pred, outside)
    index = gt.mul_(slots).add_(pred).add_(band_offset)
    hist = torch.bincount(index.view(-1), minlength=num_bands * slots**2)
    hist = hist.view(num_bands, slots, slots)
    conf = hist[:, :ignored, :ignored]  # rows: label slot, columns: pred slot
    intersect = torch.diagonal(conf[:, :outside, :outside], dim1=1, dim2=2)
    area_pred = conf[:, :, :outside].sum(1)
    area_label = conf[:, :outside, :].sum(2)
    return torch.stack([intersect, area_pred, area_label])
