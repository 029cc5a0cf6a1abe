"""The leak check of the position study's position-free arms.

On data whose look-alike pairs are told apart only by position
(``position-coded``, or ``position-prior`` with P = 1 and tilt 0), a
network that cannot read absolute position cannot separate a pair's two
classes. Its best pairs mIoU is the *position-blind level*: that of a
predictor that segments every object perfectly and gives a share ``q`` of
a pair's pixels to the first class, at random. For a pair whose first
class has pixel share ``f`` (the second ``1 - f``) the two IoUs are
``qf / (f + q(1-f))`` and ``(1-q)(1-f) / ((1-f) + (1-q)f)``; their mean
is concave in ``q`` and largest at ``q* = f^2 / (f^2 + (1-f)^2)``, which
gives 1/3 for ``f = 1/2``. The level of the pairs mIoU is the mean of the
pairs' levels.

A position-free arm (circular padding without CoordConv, or position
erasure) *leaks* when the lower end of its pairs mIoU's 95% interval over
units lies above that level: it separates the pairs, so it reads position
from somewhere.
"""
import math
from collections import OrderedDict
from typing import List, Optional, Sequence

from .results import arm, cell_fields, condition, converged, unit
from .stats import interval

__all__ = ['pair_blind_iou', 'blind_level', 'position_free',
           'position_coded_data', 'leak_rows']


def pair_blind_iou(f: float) -> float:
    """The position-blind mean IoU (in [0, 1]) of one pair whose first
    class has pixel share ``f`` in (0, 1)."""
    if not 0 < f < 1:
        raise ValueError(f'a pixel share lies in (0, 1); got {f!r}')
    q = f * f / (f * f + (1 - f) ** 2)
    iou_a = q * f / (f + q * (1 - f))
    iou_b = (1 - q) * (1 - f) / ((1 - f) + (1 - q) * f)
    return (iou_a + iou_b) / 2


def blind_level(shares: Optional[Sequence[float]] = None) -> float:
    """The position-blind pairs mIoU, in points: 100 x the mean of
    :func:`pair_blind_iou` over the pairs' first-class shares (equal
    shares, 33.3, when None)."""
    shares = [0.5] if not shares else list(shares)
    return 100 * sum(pair_blind_iou(f) for f in shares) / len(shares)


def position_free(cell: dict) -> bool:
    """Whether a cell's arm claims to have no absolute position: circular
    padding without CoordConv channels, or position erasure."""
    return cell['padding'] == 'circular' or cell['pos'] == 'erase'


def position_coded_data(cell: dict) -> bool:
    """Data whose pairs differ only by position: ``position-coded``, or
    ``position-prior`` with prior 1 and tilt 0."""
    if cell['layout'] == 'position-coded':
        return True
    return (cell['layout'] == 'position-prior' and cell['prior'] == 1 and
            cell['tilt'] is not None and cell['tilt'] == 0)


def _shares(records: Sequence[dict], pairs: Sequence[tuple]):
    """First-class pixel shares per pair, summed over the records'
    ``class_pixels`` (validation label pixels per class), or None."""
    counts = None
    for r in records:
        pixels = r.get('class_pixels')
        if not pixels:
            return None
        counts = list(pixels) if counts is None else [
            a + b for a, b in zip(counts, pixels)]
    if counts is None:
        return None
    shares = []
    for a, b in pairs:
        total = counts[a] + counts[b]
        if not total:
            return None
        shares.append(min(max(counts[a] / total, 1e-9), 1 - 1e-9))
    return shares


def leak_rows(records: Sequence[dict],
              pairs: Sequence[tuple] = ()) -> List[dict]:
    """One row per position-free arm on position-coded data: its pairs
    mIoU with the 95% t interval over units (converged cells only), the
    position-blind level and the verdict.

    Args:
        records (Sequence[dict]): Cell records.
        pairs (Sequence[tuple]): The look-alike pairs as class indices
            ``(first, second)``; with records carrying ``class_pixels``
            the level uses their pixel shares, else equal shares.

    Returns:
        list[dict]: ``condition``, ``variant`` (head, padding, pos),
        ``stats`` (:func:`.stats.interval` of the pairs mIoU), ``level``,
        ``shares`` (``'measured'`` or ``'equal (assumed)'``),
        ``not_converged`` (units left out) and ``verdict``: ``'leaks'``,
        ``'not shown'`` (the interval reaches the level) or ``'not
        judged'`` (fewer than 2 units).
    """
    arms = OrderedDict()
    for r in records:
        c = cell_fields(r)
        if not (position_free(c) and position_coded_data(c)):
            continue
        key = (condition(r), arm(r))
        arms.setdefault(key, []).append(r)
    rows = []
    for (cond, variant), members in arms.items():
        kept = [r for r in members if converged(r) is not False]
        values = [r['metrics'].get('mIoU_pairs') for r in kept]
        values = [float(v) for v in values
                  if v is not None and math.isfinite(float(v))]
        shares = _shares(kept, pairs) if pairs else None
        level = blind_level(shares)
        st = interval(values)
        if st['ci_low'] is None:
            verdict = 'not judged'
        elif st['ci_low'] > level:
            verdict = 'leaks'
        else:
            verdict = 'not shown'
        rows.append(dict(condition=cond, variant=variant, stats=st,
                         level=level,
                         shares='measured' if shares else 'equal (assumed)',
                         not_converged=[unit(r) for r in members
                                        if converged(r) is False],
                         verdict=verdict))
    return rows
