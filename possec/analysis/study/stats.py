"""Statistics of the position study: paired contrasts with confidence
intervals, and a plateau criterion for training-loss curves.

A contrast compares two variants of the study trained on the same seeds:
the per-seed differences ``variant - reference`` are summarised by their
mean and a 95% confidence interval, either Student's t-interval
(``scipy.stats.t``; the default, exact for normal differences and usable
from 2 seeds) or a bootstrap interval (``scipy.stats.bootstrap``, BCa;
needs more seeds than a study usually has to mean much). A contrast is
called an *effect* only when its interval excludes 0. Every function
returns a plain dict (floats, ints, bools, strings, None) that goes into a
JSON file or a table row as it is.

The plateau criterion judges whether a training run has converged: the
mean training loss over the last third of the run differs from the mean
over the middle third by less than a stated fraction of the latter.
"""
import math
from typing import Mapping, Optional, Sequence, Union

import numpy as np
from scipy import stats as sps

__all__ = [
    'METHODS', 'PLATEAU_FRACTION', 'paired_differences', 'interval',
    'paired_contrast', 'format_contrast', 'plain_contrast', 'plateau',
    'iterations_to_plateau', 'linear_change', 'one_sided_tests'
]

#: Interval methods: ``'t'`` (Student's t on the differences) and
#: ``'bootstrap'`` (bias-corrected and accelerated bootstrap of the mean).
METHODS = ('t', 'bootstrap')
#: Default plateau criterion: the last third's mean loss within 5% of the
#: middle third's.
PLATEAU_FRACTION = 0.05

Values = Union[Sequence[Optional[float]], Mapping[int, Optional[float]]]


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


def paired_differences(variant: Values, reference: Values) -> dict:
    """Per-seed differences ``variant - reference``.

    Args:
        variant (Sequence[float] | Mapping[int, float]): The variant's
            value per seed: a mapping ``seed -> value`` (or ``(seed,
            data_seed) -> value``), or a sequence in the same seed order
            as ``reference``. None or NaN marks a
            missing run.
        reference (Sequence[float] | Mapping[int, float]): The reference's
            values, of the same kind.

    Returns:
        dict: ``seeds`` (the seeds, or positions, with both values finite,
        sorted) and ``diffs`` (the differences in that order).
    """
    if isinstance(variant, Mapping) != isinstance(reference, Mapping):
        raise TypeError('variant and reference must both be mappings '
                        '(seed -> value) or both sequences; got '
                        f'{type(variant).__name__} and '
                        f'{type(reference).__name__}')
    if not isinstance(variant, Mapping):
        if len(variant) != len(reference):
            raise ValueError(
                f'paired values need one reference per variant value; got '
                f'{len(variant)} variant and {len(reference)} reference '
                f'values: give them per seed as mappings seed -> value')
        variant, reference = dict(enumerate(variant)), dict(
            enumerate(reference))
    seeds = sorted((s for s in set(variant) & set(reference)
                    if _finite(variant[s]) and _finite(reference[s])),
                   key=lambda s: tuple(s) if isinstance(s, tuple) else
                   (s, -1))
    return dict(seeds=seeds,
                diffs=[float(variant[s]) - float(reference[s])
                       for s in seeds])


def interval(values: Sequence[float],
             confidence: float = 0.95,
             method: str = 't',
             n_resamples: int = 9999,
             seed: int = 0) -> dict:
    """Mean and confidence interval of ``values`` (e.g. paired
    differences).

    Args:
        values (Sequence[float]): The sample (finite numbers).
        confidence (float): Confidence level, in (0, 1). Default: 0.95.
        method (str): ``'t'``: ``mean +- t_{(1+c)/2, n-1} * sd / sqrt(n)``
            (``scipy.stats.t``); ``'bootstrap'``: BCa interval of the mean
            (``scipy.stats.bootstrap``, ``n_resamples`` resamples, seeded).
            Default: 't'.
        n_resamples (int): Bootstrap resamples. Default: 9999.
        seed (int): Bootstrap random seed. Default: 0.

    Returns:
        dict: ``n``, ``mean``, ``sd`` (ddof 1; None for n = 1),
        ``ci_low``, ``ci_high`` (None when no interval exists),
        ``confidence``, ``method``, ``all_same_sign`` (every value > 0 or
        every value < 0), ``effect`` (the interval excludes 0) and ``note``
        (why there is no interval, or that it has zero width; else '').
    """
    if method not in METHODS:
        raise ValueError(f'unknown interval method {method!r}; expected one '
                         f'of {", ".join(map(repr, METHODS))}')
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), e.g. 0.95; got '
                         f'{confidence!r}')
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError(f'values must be finite numbers; got {list(x)}: '
                         f'drop missing runs first (paired_differences does)')
    n = int(x.size)
    out = dict(n=n, mean=None, sd=None, ci_low=None, ci_high=None,
               confidence=float(confidence), method=method,
               all_same_sign=bool(n and (np.all(x > 0) or np.all(x < 0))),
               effect=False, note='')
    if n == 0:
        out['note'] = 'no values: no mean, no interval'
        return out
    out['mean'] = float(x.mean())
    if n == 1:
        out['note'] = ('one value: no interval (a confidence interval needs '
                       'at least 2 seeds)')
        return out
    sd = float(x.std(ddof=1))
    out['sd'] = sd
    if sd == 0 or np.all(x == x[0]):
        # every value equal: the t-interval has zero width (scipy returns
        # NaN for scale 0) and every bootstrap resample has the same mean
        out['ci_low'] = out['ci_high'] = out['mean']
        out['note'] = 'all values equal: zero-width interval'
    elif method == 't':
        low, high = sps.t.interval(confidence, n - 1, loc=x.mean(),
                                   scale=sd / math.sqrt(n))
        out['ci_low'], out['ci_high'] = float(low), float(high)
    else:
        res = sps.bootstrap((x, ), np.mean, confidence_level=confidence,
                            n_resamples=n_resamples, method='BCa',
                            random_state=np.random.default_rng(seed))
        low, high = res.confidence_interval
        if not (math.isfinite(low) and math.isfinite(high)):
            out['note'] = (f'bootstrap interval undefined for n = {n} '
                           f'(too few distinct resamples): use method t')
            return out
        out['ci_low'], out['ci_high'] = float(low), float(high)
    out['effect'] = bool(out['ci_low'] > 0 or out['ci_high'] < 0)
    return out


def paired_contrast(variant: Values,
                    reference: Values,
                    confidence: float = 0.95,
                    method: str = 't',
                    **kwargs) -> dict:
    """A paired contrast: :func:`interval` of the per-seed differences
    ``variant - reference`` (seeds missing on either side are left out).

    Args:
        variant (Sequence[float] | Mapping[int, float]): The variant's
            values per seed.
        reference (Sequence[float] | Mapping[int, float]): The
            reference's values per seed.
        confidence (float): Confidence level. Default: 0.95.
        method (str): ``'t'`` or ``'bootstrap'``. Default: 't'.
        **kwargs: ``n_resamples`` and ``seed`` of the bootstrap.

    Returns:
        dict: The keys of :func:`interval` (``mean`` is the mean
        difference) plus ``seeds`` and ``diffs``.

    Example:
        >>> c = paired_contrast({0: 47.0, 1: 46.0, 2: 48.5},
        ...                     {0: 20.0, 1: 21.5, 2: 19.0})
        >>> round(c['mean'], 2), c['effect'], c['all_same_sign']
        (27.0, True, True)
    """
    pairs = paired_differences(variant, reference)
    out = interval(pairs['diffs'], confidence, method, **kwargs)
    out.update(pairs)
    return out


def format_contrast(result: dict, digits: int = 1) -> str:
    """A table cell: ``+27.0 [22.0, 32.0]`` (mean difference and interval),
    with ``*`` when the interval excludes 0, or ``+27.0 (n=1, no CI)``."""
    if result['mean'] is None:
        return 'n/a'
    text = f"{result['mean']:+.{digits}f}"
    if result['ci_low'] is None:
        return f"{text} (n={result['n']}, no CI)"
    star = ' *' if result['effect'] else ''
    return (f"{text} [{result['ci_low']:+.{digits}f}, "
            f"{result['ci_high']:+.{digits}f}]{star}")


def plain_contrast(result: dict, digits: int = 1, name: str = '') -> str:
    """:func:`format_contrast` without its ``*`` (for cells and sentences
    that carry the verdict in words), after ``name`` where one is given:
    ``pairs mIoU +27.0 [+22.0, +32.0]``."""
    text = format_contrast(result, digits).replace(' *', '')
    return f'{name} {text}' if name else text


def plateau(losses: Sequence[float],
            fraction: float = PLATEAU_FRACTION) -> dict:
    """Whether a training-loss curve has reached a plateau.

    The curve (one value per logged iteration, in order) is cut into three
    equal thirds (the first ``n % 3`` values go to the first third); with
    ``m1`` the mean of the middle third and ``m2`` that of the last, the
    relative change is ``(m2 - m1) / m1``, and the run has plateaued when
    ``|relative change| < fraction``. A loss still falling fast, or rising,
    fails.

    Args:
        losses (Sequence[float]): Training losses (positive, finite), at
            least 3.
        fraction (float): The largest relative change of a plateau, > 0.
            Default: :data:`PLATEAU_FRACTION` (0.05).

    Returns:
        dict: ``plateau`` (bool), ``rel_change``, ``mean_middle``,
        ``mean_last``, ``fraction`` and ``n``.
    """
    x = np.asarray(losses, dtype=np.float64).ravel()
    if x.size < 3:
        raise ValueError(f'a plateau is judged on thirds of the curve: need '
                         f'at least 3 losses, got {x.size}')
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError('losses must be finite and positive (a training '
                         'loss); got a non-finite or non-positive value')
    if not fraction > 0:
        raise ValueError(f'fraction must be > 0, e.g. 0.05; got {fraction!r}')
    third = x.size // 3
    last, middle = x[-third:], x[-2 * third:-third]
    m1, m2 = float(middle.mean()), float(last.mean())
    rel = (m2 - m1) / m1
    return dict(plateau=bool(abs(rel) < fraction), rel_change=rel,
                mean_middle=m1, mean_last=m2, fraction=float(fraction),
                n=int(x.size))


def iterations_to_plateau(iters: Sequence[int],
                          losses: Sequence[float],
                          fraction: float = PLATEAU_FRACTION,
                          min_iters: int = 0) -> dict:
    """The first logged iteration ``t >= min_iters`` at which the curve up
    to ``t`` passes :func:`plateau` (a run stopped there would count as
    converged), judged on a constant-learning-rate run.

    Args:
        iters (Sequence[int]): Logged iterations, increasing.
        losses (Sequence[float]): The training loss at each.
        fraction (float): As in :func:`plateau`. Default: 0.05.
        min_iters (int): Ignore shorter prefixes (the first iterations are
            noisy). Default: 0.

    Returns:
        dict: ``iteration`` (None when the curve never plateaus), ``index``
        (its position in ``iters``) and the :func:`plateau` result there
        (or at the full curve when none) under ``judged``.
    """
    iters = np.asarray(iters).ravel()
    if iters.size != np.asarray(losses).size:
        raise ValueError(f'iters and losses differ in length: {iters.size} '
                         f'vs {np.asarray(losses).size}')
    if np.any(np.diff(iters) <= 0):
        raise ValueError('iters must be strictly increasing')
    for i in range(2, iters.size):
        if iters[i] < min_iters:
            continue
        judged = plateau(losses[:i + 1], fraction)
        if judged['plateau']:
            return dict(iteration=int(iters[i]), index=i, judged=judged)
    return dict(iteration=None, index=None, judged=plateau(losses, fraction))


def linear_change(iters: Sequence[float], values: Sequence[float],
                  span: float, confidence: float = 0.90,
                  margin: Optional[float] = None) -> dict:
    """How much a least-squares line through ``(iters, values)`` changes
    over ``span`` iterations (``scipy.stats.linregress``): a descriptive
    read of whether validations drift or scatter around a level.

    Args:
        iters (Sequence[float]): Iterations of the validations.
        values (Sequence[float]): The metric at each.
        span (float): Iterations over which the change is read (e.g. from
            the end of the schedule to the end of the tail).
        confidence (float): Level of the t interval of the change.
            Default: 0.90 (the two one-sided 95% tests of an equivalence
            test read this interval).
        margin (float, optional): An equivalence margin for the change,
            in the values' units (e.g. the study's 2 points): adds the
            two one-sided t tests (TOST) of ``change <= -margin`` and
            ``change >= margin`` (n - 2 degrees of freedom). Default:
            None (no test).

    Returns:
        dict: ``n``, ``change`` (slope x span), ``ci_low``, ``ci_high``
        (Student's t with n - 2 degrees of freedom), ``p`` (two-sided,
        slope 0), ``sd`` (sample standard deviation of the values, ddof
        1), ``low`` and ``high`` (their range), ``mean``; with a
        ``margin`` also ``margin`` and ``tost_p`` (the larger one-sided
        p value: the change is shown to lie within ``+-margin`` when it
        is below 0.05, which is the 90% interval lying inside).
    """
    x = np.asarray(iters, dtype=np.float64).ravel()
    y = np.asarray(values, dtype=np.float64).ravel()
    if x.size != y.size or x.size < 3:
        raise ValueError(f'need 3 or more (iteration, value) pairs of equal '
                         f'length; got {x.size} iterations and {y.size} '
                         f'values')
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError('iterations and values must be finite numbers')
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), e.g. 0.9; got '
                         f'{confidence!r}')
    if margin is not None and not margin > 0:
        raise ValueError(f'the equivalence margin must be > 0, e.g. 2.0 '
                         f'points; got {margin!r}')
    fit = sps.linregress(x, y)
    se, df = float(fit.stderr) * span, x.size - 2
    half = float(sps.t.ppf((1 + confidence) / 2, df)) * se
    change = float(fit.slope) * span
    out = dict(n=int(x.size), change=change, ci_low=change - half,
               ci_high=change + half, p=float(fit.pvalue),
               sd=float(np.std(y, ddof=1)), low=float(y.min()),
               high=float(y.max()), mean=float(y.mean()))
    if margin is not None:
        out.update(margin=float(margin),
                   tost_p=max(one_sided_tests(change, se, df, margin)))
    return out


def one_sided_tests(estimate: float, se: float, df: int,
                    margin: float) -> tuple:
    """The two one-sided t tests of an equivalence test (TOST) of
    ``estimate`` against ``+-margin``: ``(p_lower, p_upper)``, with
    ``p_lower = P(T_df >= (estimate + margin) / se)`` (the test of
    ``<= -margin``) and ``p_upper = P(T_df <= (estimate - margin) / se)``
    (of ``>= margin``). With ``se`` 0 the estimate is exact and each p is
    0 or 1."""
    if se > 0:
        return (float(sps.t.sf((estimate + margin) / se, df)),
                float(sps.t.cdf((estimate - margin) / se, df)))
    return (0.0 if estimate > -margin else 1.0,
            0.0 if estimate < margin else 1.0)
