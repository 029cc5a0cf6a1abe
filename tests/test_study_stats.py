"""Tests of the study's statistics: paired contrasts with confidence
intervals (against scipy's own paired t-test and by formula) and the
plateau criterion (on curves with known answers)."""
import importlib.util
import json
import math
import os.path as osp

import numpy as np
import pytest
from scipy import stats as sps

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load_stats():
    """possec.analysis.study.stats, or the file itself while the package
    has no ``__init__``."""
    try:
        from possec.analysis.study import stats
        return stats
    except ImportError:
        path = osp.join(REPO, 'possec', 'analysis', 'study', 'stats.py')
        spec = importlib.util.spec_from_file_location('study_stats', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


stats = _load_stats()


@pytest.mark.parametrize('n', [2, 3, 5, 8])
def test_t_interval_equals_scipys_paired_t_test(n):
    rng = np.random.default_rng(n)
    ref = rng.normal(40, 5, n)
    var = ref + rng.normal(1.5, 2, n)
    got = stats.paired_contrast(list(var), list(ref))
    test = sps.ttest_rel(var, ref)
    low, high = test.confidence_interval(0.95)
    assert got['n'] == n and got['method'] == 't'
    assert got['mean'] == pytest.approx(np.mean(var - ref), abs=1e-12)
    assert got['sd'] == pytest.approx(np.std(var - ref, ddof=1), abs=1e-12)
    assert got['ci_low'] == pytest.approx(low, abs=1e-10)
    assert got['ci_high'] == pytest.approx(high, abs=1e-10)
    # An effect exactly when the interval excludes 0, which for the t
    # interval is the paired t-test's p < 0.05.
    assert got['effect'] == bool(test.pvalue < 0.05)
    assert got['all_same_sign'] == bool(
        np.all(var > ref) or np.all(var < ref))
    assert got['diffs'] == pytest.approx(list(var - ref))


def test_t_interval_by_formula_at_other_confidence():
    d = np.array([2.0, 3.5, -0.5, 4.0])
    got = stats.interval(d, confidence=0.9)
    q = sps.t.ppf(0.95, 3)  # two-sided 90%: the 95th percentile
    half = q * d.std(ddof=1) / 2  # sqrt(4) = 2
    assert got['ci_low'] == pytest.approx(d.mean() - half, abs=1e-12)
    assert got['ci_high'] == pytest.approx(d.mean() + half, abs=1e-12)
    assert not got['all_same_sign']


def test_clear_and_unclear_effects():
    # Three seeds, all +25 +- 1: an effect.
    clear = stats.paired_contrast({0: 46.3, 1: 47.0, 2: 45.1},
                                  {0: 20.4, 1: 21.9, 2: 20.0})
    assert clear['effect'] and clear['all_same_sign']
    assert clear['ci_low'] > 0
    # Two seeds of the same sign but far apart: the interval spans 0, so it
    # is not called an effect although the seeds agree.
    unclear = stats.paired_contrast([3.0, 0.2], [0.0, 0.0])
    assert unclear['all_same_sign'] and not unclear['effect']
    assert unclear['ci_low'] < 0 < unclear['ci_high']


def test_pairs_by_seed_and_drops_missing_runs():
    got = stats.paired_contrast({0: 5.0, 1: None, 2: 7.0, 3: 9.0},
                                {0: 1.0, 1: 2.0, 2: float('nan'), 3: 4.0,
                                 4: 1.0})
    assert got['seeds'] == [0, 3] and got['diffs'] == [4.0, 5.0]
    assert got['n'] == 2


def test_one_seed_gives_no_interval_and_says_so():
    got = stats.paired_contrast({0: 50.0}, {0: 20.0})
    assert got['n'] == 1 and got['mean'] == 30.0
    assert got['ci_low'] is None and got['ci_high'] is None
    assert got['sd'] is None and not got['effect']
    assert 'at least 2 seeds' in got['note']
    assert stats.format_contrast(got) == '+30.0 (n=1, no CI)'
    assert stats.interval([])['note'].startswith('no values')


def test_identical_values_give_a_zero_width_interval():
    same = stats.paired_contrast([3.0, 3.0, 3.0], [1.0, 1.0, 1.0])
    assert same['ci_low'] == same['ci_high'] == 2.0 and same['sd'] == 0
    assert same['effect'] and 'zero-width' in same['note']
    zero = stats.paired_contrast([1.0, 2.0], [1.0, 2.0])
    assert zero['mean'] == 0 and not zero['effect']
    assert not zero['all_same_sign']


def test_bootstrap_matches_the_t_interval_on_a_large_normal_sample():
    d = np.random.default_rng(0).normal(1.0, 2.0, 400)
    boot = stats.interval(d, method='bootstrap', n_resamples=2000)
    t = stats.interval(d)
    assert boot['method'] == 'bootstrap'
    # The bootstrap standard error of the mean of n = 400 normal values is
    # the t-interval's to within a few per cent.
    width_b = boot['ci_high'] - boot['ci_low']
    width_t = t['ci_high'] - t['ci_low']
    assert width_b == pytest.approx(width_t, rel=0.1)
    assert boot['ci_low'] == pytest.approx(t['ci_low'], abs=0.05 * width_t)
    # Seeded: the same interval twice.
    assert stats.interval(d, method='bootstrap', n_resamples=2000) == boot


def test_results_are_plain_json_and_format_as_a_table_cell():
    got = stats.paired_contrast([10.0, 12.0, 11.0], [1.0, 2.0, 1.5])
    assert json.loads(json.dumps(got)) == got
    text = stats.format_contrast(got)
    assert text.startswith('+9.5 [') and text.endswith('] *')


@pytest.mark.parametrize('kwargs, match', [
    (dict(values=[1.0, float('nan')]), 'finite'),
    (dict(values=[1.0, 2.0], method='jackknife'), "'t', 'bootstrap'"),
    (dict(values=[1.0, 2.0], confidence=95), r'\(0, 1\)'),
])
def test_interval_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.interval(**kwargs)


def test_paired_bad_input():
    with pytest.raises(ValueError, match='one reference per variant'):
        stats.paired_contrast([1.0, 2.0], [1.0])
    with pytest.raises(TypeError, match='both be mappings'):
        stats.paired_contrast({0: 1.0}, [1.0])


def _decay(n, tau, floor=0.2, noise=0.0, seed=0):
    """An exponential loss curve ``floor + exp(-t / tau)``, t = 0..n-1,
    with multiplicative noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return (floor + np.exp(-t / tau)) * (1 + noise * rng.standard_normal(n))


def test_plateau_by_formula():
    # 9 values: thirds [3, 3, 3]; middle mean 2, last mean 1.9 -> -5%.
    losses = [9, 9, 9, 2, 2, 2, 1.9, 1.9, 1.9]
    got = stats.plateau(losses, fraction=0.06)
    assert got['mean_middle'] == pytest.approx(2.0)
    assert got['mean_last'] == pytest.approx(1.9)
    assert got['rel_change'] == pytest.approx(-0.05)
    assert got['plateau']
    assert not stats.plateau(losses, fraction=0.04)['plateau']
    # 10 values: the extra one goes to the first third.
    assert stats.plateau([5] + losses)['mean_middle'] == pytest.approx(2.0)


def test_plateau_on_curves_with_known_answers():
    # floor + exp(-t / tau) over n steps: middle third t in [n/3, 2n/3),
    # last [2n/3, n). With tau = n / 30 both thirds sit on the floor to
    # exp(-10) -> plateau; with tau = n the loss still falls ~20% between
    # the thirds -> no plateau.
    n = 300
    assert stats.plateau(_decay(n, n / 30, noise=0.05))['plateau']
    falling = stats.plateau(_decay(n, n))
    expected = ((0.2 + np.exp(-np.arange(200, 300) / n)).mean() /
                (0.2 + np.exp(-np.arange(100, 200) / n)).mean() - 1)
    assert falling['rel_change'] == pytest.approx(expected)
    assert not falling['plateau']
    # A rising (diverging) loss is no plateau either.
    assert not stats.plateau(_decay(n, n)[::-1])['plateau']


def test_iterations_to_plateau_on_a_known_curve():
    # Noise-free floor + exp(-t / tau): the prefix up to t plateaus when
    # the last-vs-middle-third change of that prefix first drops below 5%;
    # computed here by brute force from the closed form.
    tau, floor = 50.0, 0.2
    iters = np.arange(0, 2000, 10)
    losses = floor + np.exp(-iters / tau)
    expected = None
    for i in range(2, len(iters)):
        x = losses[:i + 1]
        k = x.size // 3
        if abs(x[-k:].mean() / x[-2 * k:-k].mean() - 1) < 0.05:
            expected = int(iters[i])
            break
    got = stats.iterations_to_plateau(iters, losses)
    assert got['iteration'] == expected
    assert expected is not None and 100 < expected < 1000
    assert got['judged']['plateau']
    # A power law t^-1/2 loses the same share, 1 - (1 - sqrt(2/3)) /
    # (sqrt(2/3) - sqrt(1/3)) = 23%, between the thirds of any prefix.
    never = stats.iterations_to_plateau(iters, (iters + 10.0)**-0.5)
    assert never['iteration'] is None
    assert never['judged']['rel_change'] == pytest.approx(-0.23, abs=0.02)
    assert stats.iterations_to_plateau(
        iters, losses, min_iters=1500)['iteration'] == 1500


def test_plateau_bad_input():
    with pytest.raises(ValueError, match='at least 3'):
        stats.plateau([1.0, 0.5])
    with pytest.raises(ValueError, match='positive'):
        stats.plateau([1.0, 0.5, -0.1])
    with pytest.raises(ValueError, match='strictly increasing'):
        stats.iterations_to_plateau([0, 10, 10], [1.0, 0.9, 0.8])
    assert math.isclose(stats.PLATEAU_FRACTION, 0.05)


def test_linear_change_is_the_least_squares_line_by_formula():
    """The change over a span is the ordinary least-squares slope times
    the span, with the slope's t interval (n - 2 degrees of freedom) by
    the textbook formula: numpy's polyfit and sums of squares, not
    linregress."""
    rng = np.random.default_rng(3)
    x = np.arange(4200, 9601, 300, dtype=float)
    y = 20 + 0.0006 * (x - x[0]) + rng.normal(0, 2.5, x.size)
    got = stats.linear_change(x, y, span=4800)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    se = math.sqrt(resid @ resid / (x.size - 2) /
                   ((x - x.mean()) @ (x - x.mean())))
    half = sps.t.ppf(0.95, x.size - 2) * se * 4800
    assert got['n'] == 19
    assert got['change'] == pytest.approx(slope * 4800, rel=1e-9)
    assert got['ci_low'] == pytest.approx(slope * 4800 - half, rel=1e-9)
    assert got['ci_high'] == pytest.approx(slope * 4800 + half, rel=1e-9)
    t = slope / se
    assert got['p'] == pytest.approx(2 * sps.t.sf(abs(t), x.size - 2),
                                     rel=1e-7)
    assert got['sd'] == pytest.approx(np.std(y, ddof=1))
    assert (got['low'], got['high']) == (y.min(), y.max())
    # a planted slope of +2.9 points over the span lies in the interval
    assert got['ci_low'] < 0.0006 * 4800 < got['ci_high']


def test_linear_change_equivalence_is_two_one_sided_t_tests():
    """TOST of the line's change against +-margin by the textbook
    formula (polyfit's slope and standard error, one-sided t tests with
    n - 2 degrees of freedom), and its duality with the 90% interval:
    shown (p < 0.05) exactly when the interval lies inside the margin."""
    rng = np.random.default_rng(5)
    x = np.arange(4200, 9601, 300, dtype=float)
    y = 70 + 0.0002 * (x - x[0]) + rng.normal(0, 1.0, x.size)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    se = math.sqrt(resid @ resid / (x.size - 2) /
                   ((x - x.mean()) @ (x - x.mean()))) * 4800
    change = slope * 4800
    for margin in (0.5, 1.0, 2.0, 3.0, 5.0):
        got = stats.linear_change(x, y, span=4800, margin=margin)
        lower = sps.t.sf((change + margin) / se, x.size - 2)
        upper = sps.t.cdf((change - margin) / se, x.size - 2)
        assert got['margin'] == margin
        assert got['tost_p'] == pytest.approx(max(lower, upper), rel=1e-7)
        inside = -margin < got['ci_low'] and got['ci_high'] < margin
        assert (got['tost_p'] < 0.05) == inside
    # the duality at the interval's edge: a margin a hair past the
    # farther bound is shown, a hair short of it is not
    edge = max(-got['ci_low'], got['ci_high'])
    assert stats.linear_change(x, y, 4800, margin=edge * 1.001)[
        'tost_p'] < 0.05
    assert stats.linear_change(x, y, 4800, margin=edge * 0.999)[
        'tost_p'] > 0.05
    # a line that climbs 6 points over the span is not within +-2
    steep = 70 + 6 / 4800 * (x - x[0]) + rng.normal(0, 0.3, x.size)
    assert stats.linear_change(x, steep, 4800, margin=2)['tost_p'] > 0.5
    assert 'tost_p' not in stats.linear_change(x, y, span=4800)
    with pytest.raises(ValueError, match='margin must be > 0'):
        stats.linear_change(x, y, span=4800, margin=0)


def test_linear_change_refuses_too_few_points_in_one_line():
    with pytest.raises(ValueError, match='3 or more'):
        stats.linear_change([1, 2], [0.5, 0.7], span=1)
    with pytest.raises(ValueError, match='finite'):
        stats.linear_change([1, 2, 3], [0.5, float('nan'), 1], span=1)
