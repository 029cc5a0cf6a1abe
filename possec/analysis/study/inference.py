"""Inference for the position study: tests of paired differences, Holm's
step-down correction, TOST equivalence and dose-response slopes.

Units. Two variants are compared on cells trained with the same training
seed on the same generated data (the same data seed): the per-unit
differences ``variant - reference``, one per ``(seed, data_seed)`` pair,
are the sample. Intervals and tests are Student's t over these units. With
several data seeds crossed with several training seeds the units that
share a data seed are not independent (the data draw is common to them),
so the t interval treats the crossed design as if every pair were its own
draw; this is stated in the report beside the number of data seeds.

Primary comparisons (declared in advance: the dose-response endpoints and
slopes of help and hurt) are judged by their own 95% interval. Every other
comparison is secondary and judged by its two-sided p value after Holm's
correction within its family. Equivalence (TOST, Schuirmann 1987) is
claimed only when both one-sided tests reject at ``alpha`` against the
margin the design declares (:data:`.design.MARGINS`). Every function
returns plain dicts for JSON files and table rows.
"""
import math
from typing import Mapping, Optional, Sequence

import numpy as np
from scipy import stats as sps

from .stats import interval, one_sided_tests

__all__ = ['ALPHA', 'difference_test', 'holm', 'tost', 'dose_slope']

#: Level of every test, and 1 - the confidence of the intervals.
ALPHA = 0.05


def _sample(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(list(values), dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError(f'values must be finite numbers; got {list(x)}: '
                         f'drop missing runs first')
    return x


def difference_test(values: Sequence[float]) -> dict:
    """Two-sided one-sample t test of ``mean == 0`` on paired differences
    (``scipy.stats.ttest_1samp``).

    Args:
        values (Sequence[float]): The per-unit differences.

    Returns:
        dict: ``n``, ``t`` and ``p`` (None with fewer than 2 values; with
        all values equal ``p`` is 0 for a non-zero mean and 1 for zero).
    """
    x = _sample(values)
    n = int(x.size)
    if n < 2:
        return dict(n=n, t=None, p=None)
    if np.all(x == x[0]):
        return dict(n=n, t=None, p=0.0 if x[0] != 0 else 1.0)
    res = sps.ttest_1samp(x, 0.0)
    return dict(n=n, t=float(res.statistic), p=float(res.pvalue))


def holm(pvalues: Sequence[Optional[float]],
         alpha: float = ALPHA) -> dict:
    """Holm's step-down correction of one family of p values.

    With the ``m`` p values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted
    value of ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) p_(j))``;
    a hypothesis is rejected when its adjusted value is below ``alpha``
    (Holm 1979). Missing p values (a comparison without a test) are not
    counted in ``m`` and stay None.

    Args:
        pvalues (Sequence[float | None]): The family's p values.
        alpha (float): Family-wise error rate. Default: 0.05.

    Returns:
        dict: ``adjusted`` (in the input order), ``reject`` (bools, False
        where missing) and ``m``.
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    for i in idx:
        if not 0 <= pvalues[i] <= 1:
            raise ValueError(f'p values lie in [0, 1]; got {pvalues[i]!r}')
    m = len(idx)
    adjusted = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda k: pvalues[k])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    reject = [a is not None and a < alpha for a in adjusted]
    return dict(adjusted=adjusted, reject=reject, m=m)


def tost(values: Sequence[float], margin: float,
         alpha: float = ALPHA) -> dict:
    """Equivalence of paired differences to 0 within ``+-margin`` by two
    one-sided t tests (TOST).

    The lower test rejects ``mean <= -margin`` in favour of ``mean >
    -margin``, the upper test ``mean >= margin`` in favour of ``mean <
    margin``; with ``se = sd / sqrt(n)``, ``p_lower = P(T_{n-1} >= (mean +
    margin) / se)`` and ``p_upper = P(T_{n-1} <= (mean - margin) / se)``.
    The TOST p value is the larger of the two, and equivalence is shown
    when it is below ``alpha``, which is the same as the ``1 - 2 alpha``
    (90%) interval lying inside ``(-margin, margin)``.

    Args:
        values (Sequence[float]): The per-unit differences.
        margin (float): The equivalence margin, > 0.
        alpha (float): Level of each one-sided test. Default: 0.05.

    Returns:
        dict: ``n``, ``margin``, ``p_lower``, ``p_upper``, ``p`` (their
        maximum), ``ci_low`` / ``ci_high`` (the 90% interval for alpha
        0.05), ``confidence`` and ``equivalent`` (bool). Without at least
        2 values the p values and the interval are None and
        ``equivalent`` is False.
    """
    if not margin > 0:
        raise ValueError(f'the equivalence margin must be > 0, e.g. 2.0 '
                         f'mIoU points; got {margin!r}')
    x = _sample(values)
    n = int(x.size)
    out = dict(n=n, margin=float(margin), p_lower=None, p_upper=None,
               p=None, ci_low=None, ci_high=None,
               confidence=1 - 2 * alpha, equivalent=False)
    if n < 2:
        return out
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    se = sd / math.sqrt(n)
    out['p_lower'], out['p_upper'] = one_sided_tests(mean, se, n - 1, margin)
    if sd == 0:
        inside = -margin < mean < margin
        out.update(ci_low=mean, ci_high=mean)
    else:
        half = float(sps.t.ppf(1 - alpha, n - 1)) * se
        out['ci_low'], out['ci_high'] = mean - half, mean + half
        inside = None
    out['p'] = max(out['p_lower'], out['p_upper'])
    out['equivalent'] = bool(out['p'] < alpha) if inside is None else \
        bool(inside)
    return out


def dose_slope(per_unit: Mapping[object, Mapping[float, float]],
               confidence: float = 1 - ALPHA) -> dict:
    """Slope of a paired difference against the dose, units as the sample.

    Model: for unit ``u`` (a training seed, or a ``(seed, data_seed)``
    pair) and dose ``x``, ``d_ux = a_u + b_u x + e_ux``; each unit's slope
    ``b_u`` is its least-squares slope over the doses it has (at least two
    distinct doses), and the reported slope is the mean of the ``b_u``
    with Student's t interval over units (``n - 1`` degrees of freedom)
    and the two-sided test of a zero slope. The units are the replicates,
    so the interval carries the seed-to-seed spread of the slope and not
    the residual scatter about one pooled line. With every unit at the
    same doses the mean slope equals the least-squares slope of the mean
    differences.

    Args:
        per_unit (Mapping): ``{unit: {dose: difference}}``.
        confidence (float): Interval level. Default: 0.95.

    Returns:
        dict: The keys of :func:`.stats.interval` for the slope (``mean``
        is the slope, per unit of dose), ``p``, ``units``, ``slopes`` and
        ``unit_doses`` (per unit, in the same order: its slope and the
        doses it was fitted over) and ``doses`` (every dose seen).
    """
    units, slopes, unit_doses, doses = [], [], [], set()
    for u in sorted(per_unit, key=_unit_key):
        points = {float(x): float(d) for x, d in per_unit[u].items()
                  if d is not None and math.isfinite(float(d))}
        doses.update(points)
        if len(points) < 2:
            continue
        x = np.array(sorted(points))
        y = np.array([points[v] for v in x])
        xc = x - x.mean()
        slopes.append(float((xc * (y - y.mean())).sum() / (xc * xc).sum()))
        units.append(u)
        unit_doses.append([float(v) for v in x])
    out = interval(slopes, confidence=confidence)
    out.update(p=difference_test(slopes)['p'], units=units, slopes=slopes,
               unit_doses=unit_doses, doses=sorted(doses))
    return out


def _unit_key(u) -> tuple:
    """Sort units: seeds, or ``(seed, data_seed)`` pairs, alike."""
    return tuple(u) if isinstance(u, tuple) else (u, -1)
