"""Tests of the study's inference: Holm's correction by hand, TOST and the
difference test against scipy's one-sample t tests, dose-response slopes
against per-unit least squares, the position-blind level against a
brute-force search, the wording of the verdicts and the leak check on
planted results."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from possec.analysis.study import inference, leak, verdict

from .test_study_comparisons import _record

FORBIDDEN = ('no difference', 'matches', 'free', 'no effect', 'same as',
             'does not repair', 'no different')


def test_holm_by_hand_on_four_p_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06;
    # 0.04 x 1 = 0.04 -> 0.06 (the running maximum keeps the order)
    got = inference.holm(p)
    assert got['m'] == 4
    assert got['adjusted'] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert got['reject'] == [True, False, False, True]
    # missing tests are not counted in m; adjusted values stop at 1
    got = inference.holm([0.3, None, 0.6])
    assert got['m'] == 2 and got['adjusted'][1] is None
    assert got['adjusted'] == [0.6, None, 0.6]
    assert inference.holm([0.4, 0.3])['adjusted'] == pytest.approx([0.6, 0.6])
    assert inference.holm([0.7, 0.6, 0.5])['adjusted'] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        inference.holm([1.5])


@pytest.mark.parametrize('diffs, equivalent', [
    ([0.3, -0.4, 0.6, 0.1, -0.2, 0.5], True),   # tight around 0
    ([0.5, 3.0, -1.5, 2.5, 1.0], False),        # wide: the 90% CI leaves
    ([2.4, 2.6, 2.5, 2.7], False),              # tight, outside the margin
])
def test_tost_against_scipy_one_sided_tests(diffs, equivalent):
    m = 2.0
    got = inference.tost(diffs, m)
    lower = sps.ttest_1samp(diffs, -m, alternative='greater').pvalue
    upper = sps.ttest_1samp(diffs, m, alternative='less').pvalue
    assert got['p_lower'] == pytest.approx(lower, rel=1e-10)
    assert got['p_upper'] == pytest.approx(upper, rel=1e-10)
    assert got['p'] == pytest.approx(max(lower, upper), rel=1e-10)
    ci = sps.ttest_1samp(diffs, 0.0).confidence_interval(0.90)
    assert (got['ci_low'], got['ci_high']) == pytest.approx((ci.low,
                                                             ci.high))
    # TOST at 0.05 rejects both nulls exactly when the 90% interval lies
    # inside the margins
    assert got['equivalent'] == equivalent == bool(-m < ci.low and
                                                    ci.high < m)


def test_tost_edge_cases():
    assert inference.tost([1.0], 2.0)['p'] is None
    assert not inference.tost([1.0], 2.0)['equivalent']
    same = inference.tost([0.5, 0.5, 0.5], 2.0)
    assert same['equivalent'] and same['p'] == 0.0
    assert not inference.tost([3.0, 3.0], 2.0)['equivalent']
    with pytest.raises(ValueError, match='margin must be > 0'):
        inference.tost([1.0, 2.0], 0.0)


def test_difference_test_against_scipy():
    d = [1.2, 0.4, 2.2, 1.7]
    got = inference.difference_test(d)
    ref = sps.ttest_1samp(d, 0.0)
    assert got['p'] == pytest.approx(ref.pvalue, rel=1e-12)
    assert got['t'] == pytest.approx(ref.statistic, rel=1e-12)
    assert inference.difference_test([3.0])['p'] is None
    assert inference.difference_test([2.0, 2.0])['p'] == 0.0


def test_dose_slope_against_per_unit_least_squares():
    rng = np.random.default_rng(3)
    doses = [0.5, 0.75, 0.9, 1.0]
    per_unit = {(s, d): {x: -40 * (x - 0.5) + rng.normal(0, 2)
                         for x in doses}
                for s in range(3) for d in range(2)}
    got = inference.dose_slope(per_unit)
    slopes = [sps.linregress(doses, [per_unit[u][x] for x in doses]).slope
              for u in sorted(per_unit)]
    assert got['slopes'] == pytest.approx(slopes)
    ref = sps.ttest_1samp(slopes, 0.0)
    ci = ref.confidence_interval(0.95)
    assert got['mean'] == pytest.approx(np.mean(slopes))
    assert (got['ci_low'], got['ci_high']) == pytest.approx((ci.low,
                                                             ci.high))
    assert got['p'] == pytest.approx(ref.pvalue)
    # every unit at the same doses: the mean slope is the least-squares
    # slope of the mean differences
    means = [np.mean([per_unit[u][x] for u in per_unit]) for x in doses]
    assert got['mean'] == pytest.approx(sps.linregress(doses, means).slope)
    # a unit with one dose has no slope and is left out
    one = inference.dose_slope({0: {0.5: 1.0, 1.0: 3.0}, 1: {0.5: 2.0}})
    assert one['units'] == [0] and one['slopes'] == pytest.approx([4.0])
    assert one['unit_doses'] == [[0.5, 1.0]]
    assert got['unit_doses'] == [doses] * len(per_unit)


@pytest.mark.parametrize('f', [0.5, 0.3, 0.62, 0.9])
def test_blind_level_against_a_brute_force_grid(f):
    q = np.linspace(0, 1, 200001)
    with np.errstate(invalid='ignore', divide='ignore'):
        a = np.nan_to_num(q * f / (f + q * (1 - f)))
        b = np.nan_to_num((1 - q) * (1 - f) / ((1 - f) + (1 - q) * f))
    best = float(((a + b) / 2).max())
    assert leak.pair_blind_iou(f) == pytest.approx(best, abs=1e-9)
    assert leak.pair_blind_iou(f) == pytest.approx(leak.pair_blind_iou(1 - f))


def test_blind_level_equal_shares_is_a_third():
    assert leak.blind_level() == pytest.approx(100 / 3)
    assert leak.blind_level([0.5] * 5) == pytest.approx(100 / 3)
    assert leak.blind_level([0.5, 0.9]) == pytest.approx(
        50 * (leak.pair_blind_iou(0.5) + leak.pair_blind_iou(0.9)))
    with pytest.raises(ValueError, match=r'\(0, 1\)'):
        leak.pair_blind_iou(1.0)


def _row(diffs, primary, family='f', column='mIoU_pairs'):
    return dict(label='x', stats={column: dict(
        diffs=list(diffs), **_interval(diffs))},
        judged=[(column, primary, family)])


def _interval(diffs):
    from possec.analysis.study.stats import interval
    return interval(diffs)


def test_wording_follows_the_statistics():
    rows = [
        _row([1.2, -1.0, 1.6, 0.1, -1.1, 1.4], True),   # TOST passes
        _row([0.5, 3.0, -1.5, 2.5, 1.0], True),        # neither
        _row([-20.0, -24.0, -22.0], True),              # CI excludes 0
        _row([1.0], True),                             # one unit
    ]
    verdict.judge(rows)
    words = [r['verdicts']['mIoU_pairs']['verdict'] for r in rows]
    assert words == ['equivalent', 'not shown', 'differs', 'not judged']
    text = [verdict.sentence(r['verdicts']['mIoU_pairs'], 'pairs mIoU')
            for r in rows]
    tost_p = inference.tost(rows[0]['stats']['mIoU_pairs']['diffs'],
                            2.0)['p']
    assert 0.001 < tost_p < 0.05
    assert f'equivalent within ±2 (TOST p={tost_p:.3f})' in text[0]
    assert 'equivalent' not in text[1] and 'not shown' in text[1]
    assert 'differs' in text[2] and 'lower' in text[2]
    assert 'equivalent' not in text[2]
    assert 'not judged' in text[3]
    for t in text:
        assert not any(w in t for w in FORBIDDEN), t
    # a small but clear difference: differs, and within the margin
    small = _row([0.5, 0.6, 0.55, 0.45, 0.5], True)
    verdict.judge([small])
    v = small['verdicts']['mIoU_pairs']
    assert v['verdict'] == 'differs' and v['equivalent']
    assert 'the difference is equivalent within ±2 (TOST p' in \
        verdict.sentence(v, 'pairs mIoU')


def test_secondary_verdicts_use_holm_within_their_family():
    # raw p values 0.02, 0.03, 0.04: each below 0.05, none after Holm
    # (0.06, 0.06, 0.06); a primary with the same data is judged by its CI
    diffs = {}
    for target in (0.02, 0.03, 0.04):
        # two units d, d + 1: t = (d + .5) / .5, p from scipy
        d = float(sps.t.ppf(1 - target / 2, 1) * 0.5 - 0.5)
        diffs[target] = [d, d + 1.0]
        assert sps.ttest_1samp(diffs[target], 0).pvalue == pytest.approx(
            target)
    rows = [_row(diffs[t], False, family='fam') for t in diffs]
    rows.append(_row(diffs[0.02], False, family='other'))
    rows.append(_row(diffs[0.02], True, family='fam'))
    verdict.judge(rows)
    v = [r['verdicts']['mIoU_pairs'] for r in rows]
    assert [x['p_holm'] for x in v[:3]] == pytest.approx([0.06] * 3)
    assert [x['verdict'] for x in v[:3]] == ['not shown'] * 3
    # alone in its family the same difference differs; so does the primary
    assert v[3]['p_holm'] == pytest.approx(0.02)
    assert v[3]['verdict'] == 'differs' and v[4]['verdict'] == 'differs'
    assert 'Holm p=0.02' in verdict.sentence(v[3], 'pairs mIoU')
    assert v[4]['p_holm'] is None


def test_leak_check_on_planted_results():
    leaking = [_record('position-coded', 'circular', s, v)
               for s, v in enumerate([40.0, 42.0, 41.0])]
    blind = [_record('position-coded', 'circular', s, v, pos='erase')
             for s, v in enumerate([30.0, 36.0, 34.0])]
    other = [_record('position-coded', 'zeros', s, 90.0) for s in range(3)]
    coord = [_record('position-coded', 'circular+coord', s, 90.0)
             for s in range(3)]
    shifted = [_record('position-prior', 'circular', s, 60.0, prior=1.0,
                       tilt=10.0) for s in range(3)]
    bad = _record('position-coded', 'circular', 3, 99.0, converged=False)
    rows = leak.leak_rows(leaking + blind + other + coord + shifted + [bad])
    # only the position-free arms on position-only data are checked
    assert [(r['variant'], r['verdict']) for r in rows] == [
        (('parsenet', 'circular', 'none'), 'leaks'),
        (('parsenet', 'circular', 'erase'), 'not shown')]
    st = rows[0]['stats']
    ci = sps.ttest_1samp([40.0, 42.0, 41.0], 0).confidence_interval()
    assert (st['ci_low'], st['ci_high']) == pytest.approx((ci.low, ci.high))
    assert st['ci_low'] > 100 / 3 and rows[0]['level'] == pytest.approx(
        100 / 3)
    assert rows[0]['not_converged'] == [(3, 0)] and st['n'] == 3
    # measured pixel shares change the level: pair (1, 2) at 3:1
    pixels = [0] * 21
    pixels[1], pixels[2] = 300, 100
    for r in leaking:
        r['class_pixels'] = pixels
    row = leak.leak_rows(leaking, pairs=[(1, 2)])[0]
    assert row['shares'] == 'measured'
    assert row['level'] == pytest.approx(100 * leak.pair_blind_iou(0.75))
    # tilt 0 at P = 1 is position-only data too; tilt 10 is not
    zero_tilt = [_record('position-prior', 'circular', s, 50.0, prior=1.0,
                         tilt=0.0) for s in range(2)]
    assert len(leak.leak_rows(zero_tilt)) == 1
    assert math.isclose(leak.blind_level(None), 100 / 3)
