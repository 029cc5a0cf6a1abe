"""The design's comparisons on study records: non-converged cells left out
of every effect, the context interaction paired by unit, the slope of a
dose-response curve against per-unit least squares, and which rows are
primary."""
import numpy as np
import pytest
from scipy import stats as sps

from possec.analysis.study.aggregate import group
from possec.analysis.study.comparisons import design_rows, dose_curves
from possec.analysis.study.verdict import judge


def _record(layout, padding, seed, pairs, converged=True, pos='none',
            prior=None, tilt=None, periodic=True, spc=0.1, head='parsenet',
            val_prior=None, data_seed=0):
    return dict(
        cell=dict(layout=layout, head=head, padding=padding, pos=pos,
                  seed=seed, data_seed=data_seed, prior=prior,
                  val_prior=val_prior,
                  tilt=tilt, periodic=periodic),
        name=f'{layout}-{prior}-{head}-{padding}-{pos}-{seed}-{data_seed}',
        metrics=dict(mIoU=pairs, mIoU_pairs=pairs, mIoU_others=80.0),
        probe=dict(spc=dict(H=spc, V=spc, G=spc)),
        convergence=dict(converged=converged, criterion='test'))


def test_non_converged_cells_are_left_out_of_effects():
    records = []
    for seed, (z, c) in enumerate([(88.0, 64.0), (87.0, 66.0),
                                   (89.0, 63.0)]):
        records.append(_record('position-prior', 'zeros', seed, z,
                               prior=1.0, tilt=10.0))
        records.append(_record('position-prior', 'circular', seed,
                               c if seed != 2 else -500.0,
                               converged=seed != 2, prior=1.0, tilt=10.0))
    # a failed cell whose unit has no cell of the other arm: not run, so
    # not a unit the comparison leaves out
    records.append(_record('position-prior', 'zeros', 5, 40.0,
                           converged=False, prior=1.0, tilt=10.0))
    rows = [r for r in design_rows(records) if r['kind'] == 'comparison']
    assert len(rows) == 1
    st = rows[0]['stats']['mIoU_pairs']
    # zeros - circular on units 0 and 1 only; unit 2 is named as left out
    assert st['diffs'] == pytest.approx([88.0 - 64.0, 87.0 - 66.0])
    assert rows[0]['not_converged'] == [(2, 0)]
    assert rows[0]['failed_arms'][(2, 0)] == ['parsenet / circular / pos none']
    grouped = group(records)
    circ = grouped['position-prior P=1 tilt=10 periodic'][
        ('parsenet', 'circular', 'none')]
    assert sorted(circ) == [(0, 0), (1, 0)]
    # unknown convergence (older records) is kept
    for r in records:
        r.pop('convergence')
    rows = [r for r in design_rows(records) if r['kind'] == 'comparison']
    assert rows[0]['stats']['mIoU_pairs']['n'] == 3


def test_context_interaction_is_paired_by_unit():
    pn = {0: (80.0, 60.0), 1: (82.0, 63.0), 2: (79.0, 61.0)}
    fcn = {0: (70.0, 62.0), 1: (75.0, 60.0), 2: (71.0, 65.0)}
    records = []
    for head, values in (('parsenet', pn), ('fcn', fcn)):
        for seed, (z, c) in values.items():
            records += [_record('position-prior', 'zeros', seed, z,
                                prior=1.0, tilt=10.0, head=head),
                        _record('position-prior', 'circular', seed, c,
                                prior=1.0, tilt=10.0, head=head)]
    rows = judge(design_rows(records))
    inter = [r for r in rows if r['kind'] == 'interaction']
    assert len(inter) == 1 and inter[0]['head'] == 'fcn - parsenet'
    d = [(fcn[s][0] - fcn[s][1]) - (pn[s][0] - pn[s][1]) for s in range(3)]
    st = inter[0]['stats']['mIoU_pairs']
    assert st['diffs'] == pytest.approx(d)
    ci = sps.ttest_1samp(d, 0.0).confidence_interval()
    assert (st['ci_low'], st['ci_high']) == pytest.approx((ci.low, ci.high))
    v = inter[0]['verdicts']['mIoU_pairs']
    assert not v['primary'] and v['family'] == 'context, interaction'
    # ParseNet's border comparison is a help row (primary at P = 1, tilt
    # 10), not repeated under context; FCN's is a secondary context row
    comp = [r for r in rows if r['kind'] == 'comparison']
    assert [(r['contrast'], r['head'], r['headline']) for r in comp] == [
        ('help', 'parsenet', True), ('context', 'fcn', False)]


def test_dose_curve_slope_and_primaries():
    rng = np.random.default_rng(0)
    priors = (0.5, 0.75, 1.0)
    records, diffs = [], {}
    for seed in range(3):
        for p in priors:
            z = 60 + 40 * (p - 0.5) + rng.normal(0, 1)
            c = 60 + rng.normal(0, 1)
            diffs.setdefault(seed, []).append(z - c)
            for tilt in (10.0, 20.0):
                records += [_record('position-prior', 'zeros', seed, z,
                                    prior=p, tilt=tilt),
                            _record('position-prior', 'circular', seed, c,
                                    prior=p, tilt=tilt)]
    rows = judge(design_rows(records))
    slopes = [r for r in rows if r['kind'] == 'slope']
    assert len(slopes) == 2
    by_tilt = {('tilt 10' in r['curve']): r for r in slopes}
    expected = [sps.linregress(priors, diffs[s]).slope for s in range(3)]
    st = by_tilt[True]['stats']['mIoU_pairs']
    assert st['slopes'] == pytest.approx(expected)
    # primary: the slope and the highest dose on the main panel (tilt 10)
    assert by_tilt[True]['verdicts']['mIoU_pairs']['primary']
    assert not by_tilt[False]['verdicts']['mIoU_pairs']['primary']
    primary = sorted((r['condition'], r['kind']) for r in rows
                     if r['verdicts']['mIoU_pairs']['primary'])
    assert primary == [
        ('help: parsenet / zeros / pos none - parsenet / circular / pos '
         'none, tilt 10, periodic', 'slope'),
        ('position-prior P=1 tilt=10 periodic', 'comparison')]
    # no slope has an equivalence margin, so none is called equivalent
    assert all(r['verdicts']['mIoU_pairs']['verdict'] != 'equivalent'
               for r in slopes)
    curves = dose_curves(rows)
    assert [len(c['points']) for c in curves] == [3, 3]
    assert [p['dose'] for p in curves[0]['points']] == list(priors)


def test_primary_endpoint_unit_by_unit():
    """The report lists a primary endpoint's units one by one: each unit's
    two planted values and their difference, whether the unit is in the
    interval (both cells converged), and the mean difference per data
    seed over the units in it; a unit with one arm only is not listed."""
    from possec.analysis.study.report import judged_rows
    from possec.analysis.study.report_sections import primary_section
    planted = {(0, 0): (92.0, 85.5, True), (1, 0): (93.0, 88.25, True),
               (2, 0): (91.5, 90.0, True), (0, 1): (91.0, 79.5, True),
               (1, 1): (90.5, 70.0, False), (2, 1): (92.5, 80.75, True)}
    records = []
    for (seed, data), (z, c, ok) in planted.items():
        records.append(_record('position-prior', 'zeros', seed, z, prior=1.0,
                               tilt=10.0, spc=0.8, data_seed=data))
        records.append(_record('position-prior', 'circular', seed, c,
                               converged=ok, prior=1.0, tilt=10.0, spc=0.1,
                               data_seed=data))
    records.append(_record('position-prior', 'zeros', 3, 50.0, prior=1.0,
                           tilt=10.0, data_seed=0))  # no circular twin
    text = primary_section(judged_rows(records), records)
    rows = [line.split(' | ') for line in text.splitlines()
            if line.startswith('| help endpoint')]
    order = sorted(planted, key=lambda u: (u[1], u[0]))
    assert [r[2] for r in rows] == [f's{s}/d{d}' for s, d in order]
    for r, u in zip(rows, order):
        z, c, ok = planted[u]
        assert (float(r[4]), float(r[5])) == pytest.approx((z, c), abs=0.05)
        assert r[6] == f'{z - c:+.1f}'
        assert float(r[7]) == pytest.approx(0.8 - 0.1)
        assert r[8].startswith('yes' if ok else
                               'no (parsenet / circular / pos none')
    means = {d: np.mean([planted[u][0] - planted[u][1] for u in planted
                         if u[1] == d and planted[u][2]]) for d in (0, 1)}
    # and the interval with each data seed's mean as one value, by scipy
    centre = (means[0] + means[1]) / 2
    low, high = sps.t.interval(0.95, 1, loc=centre, scale=np.std(
        [means[0], means[1]], ddof=1) / np.sqrt(2))
    line = [x for x in text.splitlines() if 'by data seed' in x]
    assert line == [
        f'help endpoint (parsenet, tilt 10, P=1), mean difference by data '
        f'seed over the units in the interval (descriptive): d0 '
        f'{means[0]:+.1f} (3 units); d1 {means[1]:+.1f} (2 units). With '
        f'each data seed\'s mean as one value (95% t interval, n = 2 data '
        f'seeds): {centre:+.1f} [{low:+.1f}, {high:+.1f}].']


@pytest.fixture
def figures(monkeypatch):
    """The figures the study's comparison plots would save, kept open."""
    from possec.analysis.study import comparison_plots
    saved = []
    monkeypatch.setattr(comparison_plots, '_save',
                        lambda fig, path: saved.append(fig))
    return saved


def test_contrast_figure_draws_unit_dots_only_beside_a_mean(figures):
    """A row of one unit has no interval: its marker stays hollow (white)
    and no grey unit dot is drawn into it; a row of three units gets its
    three dots at the units' differences."""
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_rgba

    from possec.analysis.study import comparison_plots
    diffs = [-70.0, -65.0, -72.0]
    t = sps.t.ppf(0.975, 2) * np.std(diffs, ddof=1) / np.sqrt(3)
    rows = [dict(contrast='hurt', label='three units',
                 judged=[('mIoU_pairs', 'differs')],
                 stats=dict(mIoU_pairs=dict(
                     mean=np.mean(diffs), ci_low=np.mean(diffs) - t,
                     ci_high=np.mean(diffs) + t, diffs=diffs)),
                 verdicts=dict(mIoU_pairs=dict(verdict='differs'))),
            dict(contrast='context', label='one unit',
                 judged=[('mIoU_pairs', 'not judged')],
                 stats=dict(mIoU_pairs=dict(mean=-72.4, ci_low=None,
                                            ci_high=None, diffs=[-72.4])),
                 verdicts=dict(mIoU_pairs=dict(verdict='not judged')))]
    comparison_plots.plot_contrasts(rows, 'unused.png')
    ax = figures[0].axes[0]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(dots) == 1
    np.testing.assert_allclose(sorted(dots[0].get_offsets()[:, 0]),
                               sorted(diffs))
    markers = {round(float(line.get_ydata()[0])): line
               for line in ax.lines if line.get_marker() == 'o'}
    # the first row is drawn at the top (y = 1), the one-unit row at y = 0
    assert markers[0].get_markerfacecolor() == 'white'
    assert to_rgba(markers[1].get_markerfacecolor()) == to_rgba('tab:red')


def test_dose_figure_counts_left_out_units_at_the_panel_foot(figures):
    """A dose whose unit failed is counted by a grey cross at the foot of
    the panel (axes coordinates), not at a difference of 0 on the data
    scale, where it would read as a measured point."""
    from possec.analysis.study import comparison_plots
    records = []
    for seed in range(3):
        for p, z in ((0.5, 70.0), (0.9, 20.0)):
            records += [_record('prior-shift', 'zeros', seed, z + seed,
                                converged=not (p == 0.9 and seed == 2),
                                prior=p, val_prior=round(1 - p, 2),
                                tilt=10.0),
                        _record('prior-shift', 'circular', seed, 80.0 - seed,
                                prior=p, val_prior=round(1 - p, 2),
                                tilt=10.0)]
    curves = dose_curves(judge(design_rows(records)))
    assert [p['not_converged'] != [] for p in curves[0]['points']] == [
        False, True]
    comparison_plots.plot_dose_response(curves, 'unused.png')
    ax = figures[0].axes[0]
    crosses = [line for line in ax.lines if line.get_marker() == 'x']
    assert len(crosses) == 1
    # x in data coordinates (the dose), y in axes coordinates (the foot)
    assert crosses[0].get_transform() == ax.get_xaxis_transform()
    assert list(crosses[0].get_xdata()) == [0.9]
    assert list(crosses[0].get_ydata()) == [0]
    notes = [t for t in ax.texts if t.get_text().endswith(' nc')]
    assert [t.get_text() for t in notes] == ['1 nc']
    assert notes[0].xycoords == ax.get_xaxis_transform()


def test_contrast_figure_wraps_long_labels_and_keeps_the_plot_wide(
        figures):
    """The report's comparison labels run to 150 characters: they wrap to
    lines of at most 56 characters with every word kept, and the plot
    keeps at least half of the figure's width."""
    from possec.analysis.study import comparison_plots
    label = ('(parsenet-noglobal - parsenet) of zeros / pos none - '
             'circular / pos none (prior-shift P=0.9 Q=0.1 tilt=10 '
             'periodic)')
    rows = [dict(contrast='context', label=label,
                 judged=[('mIoU_pairs', 'not shown')],
                 not_converged=['a', 'b'],
                 stats=dict(mIoU_pairs=dict(mean=5.0, ci_low=-16.3,
                                            ci_high=26.3,
                                            diffs=[-0.1, -2.4, 25.0])),
                 verdicts=dict(mIoU_pairs=dict(verdict='not shown')))]
    comparison_plots.plot_contrasts(rows, 'unused.png')
    fig = figures[0]
    ax = fig.axes[0]
    fig.canvas.draw()
    [text] = [t.get_text() for t in ax.get_yticklabels()]
    assert len(text.split('\n')) > 1
    assert max(len(line) for line in text.split('\n')) <= 56
    assert ' '.join(text.split()) == (
        f'context: {label} [Δ pairs mIoU] (2 not converged, left out)')
    assert ax.get_position().width >= 0.5


def test_slope_row_names_the_doses_a_unit_lost():
    """A unit whose cell failed at one dose enters the slope over its
    other doses (scipy's least squares over those) and the comparison
    table names it with the dose left out; a unit left with one
    converged dose is out of the slope and named bare."""
    from possec.analysis.study.report_sections import comparison_table
    priors = (0.5, 0.75, 1.0)
    gap = {0: (-1.0, -5.0, 5.0), 1: (-3.0, 2.0, 11.0), 2: (-6.0, 0.0, 8.0),
           3: (1.0, 4.0, 9.0)}
    failed = {(1, 0.75), (3, 0.75), (3, 1.0)}   # unit 3 keeps one dose
    records = []
    for seed, gaps in gap.items():
        for p, g in zip(priors, gaps):
            records += [
                _record('position-prior', 'zeros', seed, 70.0 + g,
                        prior=p, tilt=10.0,
                        converged=(seed, p) not in failed),
                _record('position-prior', 'circular', seed, 70.0,
                        prior=p, tilt=10.0)]
    rows = judge(design_rows(records))
    slope, = [r for r in rows if r['kind'] == 'slope']
    st = slope['stats']['mIoU_pairs']
    expected = [sps.linregress(priors, gap[0]).slope,
                sps.linregress((0.5, 1.0), (gap[1][0], gap[1][2])).slope,
                sps.linregress(priors, gap[2]).slope]
    assert st['slopes'] == pytest.approx(expected)
    assert slope['doses_left_out'] == {(1, 0): [0.75]}
    row = comparison_table([slope]).splitlines()[-1]
    assert row.endswith('| s1/d0 at P=0.75, s3/d0 |')
    # two doses of one unit left out: joined by "and", not read as units
    slope['doses_left_out'] = {(1, 0): [0.75, 0.9]}
    row = comparison_table([slope]).splitlines()[-1]
    assert row.endswith('| s1/d0 at P=0.75 and 0.9, s3/d0 |')
    # the primary line groups the units by the doses their slopes were
    # fitted over, each with its slope (scipy's, above), and names the
    # units in no slope with the doses they did and did not converge
    # at; a unit run at one dose only (planted: s4, converged) among them
    from possec.analysis.study.report_sections import primary_section
    records += [_record('position-prior', padding, 4, 70.0, prior=0.5,
                        tilt=10.0) for padding in ('zeros', 'circular')]
    rows = judge(design_rows(records))
    line, = [x for x in primary_section(rows, records).splitlines()
             if x.startswith('- help slope')]
    assert line.endswith(
        f" Over 3 units, each unit's slope over its own converged doses: "
        f"s0/d0 {expected[0]:+.1f}, s2/d0 {expected[2]:+.1f} (P=0.5, 0.75 "
        f"and 1); s1/d0 {expected[1]:+.1f} (P=0.5 and 1). In no slope "
        f"(fewer than two converged doses): s3/d0 (converged at P=0.5; "
        f"not converged at P=0.75 and 1), s4/d0 (converged at P=0.5).")
