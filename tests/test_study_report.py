"""The study's report re-derives from a results file alone: ``--report`` on
the committed fixture regenerates the committed ``study.md`` byte for byte
and the same PNG bytes on every run; a file that is not a results file is
refused in one line.

The fixture (tests/data/study_results_small.json) holds made-up but
plausible records: one help curve (ParseNet, tilt 10, periodic data, P =
0.5 and 1.0; one circular cell at P = 1 did not converge and carries a
wild value that must not count) and the removal condition
(position-coded, periodic: zeros, circular, erasure), 3 training seeds x
1 data seed. After a deliberate change of the report, regenerate the
expected files with
``python tools/analysis/position_study.py --report
tests/data/study_results_small.json --out-dir /tmp/r`` and copy
``/tmp/r/study.md`` to tests/data/study_report_small/, and the pixel
hashes with ``python tests/test_study_report.py /tmp/r``.
"""
import copy
import hashlib
import importlib.util
import json
import math
import os.path as osp
import sys

import numpy as np
import pytest
from scipy import stats as sps

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURE = osp.join(REPO, 'tests', 'data', 'study_results_small.json')
EXPECTED = osp.join(REPO, 'tests', 'data', 'study_report_small')
PNGS = ('study_bands.png', 'study_spc.png', 'study_contrasts.png',
        'study_dose.png', 'study_loss.png', 'study_validations.png')


def _tool():
    spec = importlib.util.spec_from_file_location(
        'position_study_tool',
        osp.join(REPO, 'tools', 'analysis', 'position_study.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def pixel_hashes(folder: str, names=PNGS) -> dict:
    """sha256 of each figure's decoded RGBA pixels (8 bits)."""
    import matplotlib.image as mpimg
    import numpy as np
    out = {}
    for name in names:
        pixels = mpimg.imread(osp.join(folder, name))
        out[name] = hashlib.sha256(
            np.round(pixels * 255).astype(np.uint8).tobytes()).hexdigest()
    return out


@pytest.fixture(scope='module')
def reports(tmp_path_factory):
    """The report of the fixture, written twice by the tool."""
    tool = _tool()
    out = []
    for i in range(2):
        folder = str(tmp_path_factory.mktemp(f'report{i}'))
        tool.main(['--report', FIXTURE, '--out-dir', folder])
        out.append(folder)
    return out


def test_report_regenerates_the_committed_markdown(reports):
    with open(osp.join(EXPECTED, 'study.md'), 'rb') as f:
        expected = f.read()
    for folder in reports:
        with open(osp.join(folder, 'study.md'), 'rb') as f:
            assert f.read() == expected


def test_report_figures_are_byte_stable(reports):
    import matplotlib
    names = [n for n in PNGS if osp.isfile(osp.join(reports[0], n))]
    assert len(names) >= 5, names
    for name in names:
        data = [open(osp.join(folder, name), 'rb').read()
                for folder in reports]
        assert data[0] == data[1], name
        assert b'Software' not in data[0] and b'Creation' not in data[0]
    with open(osp.join(EXPECTED, 'pixels.json')) as f:
        recorded = json.load(f)
    if recorded['matplotlib'] != matplotlib.__version__:
        pytest.skip(f"pixel hashes recorded with matplotlib "
                    f"{recorded['matplotlib']}, this is "
                    f"{matplotlib.__version__}")
    assert pixel_hashes(reports[0], names) == recorded['sha256']


def test_results_file_round_trips_to_the_same_bytes(reports, tmp_path):
    from possec.analysis.study.results import load_results, write_results
    data = load_results(FIXTURE)
    again = write_results(str(tmp_path / 'again.json'),
                          list(reversed(data['cells'])), data['settings'],
                          data['command'])
    assert open(again, 'rb').read() == open(FIXTURE, 'rb').read()
    written = osp.join(reports[0], 'study_results.json')
    assert open(written, 'rb').read() == open(FIXTURE, 'rb').read()


def test_report_states_the_fixture_verdicts(reports):
    text = open(osp.join(reports[0], 'study.md')).read()
    # the non-converged cell is named and left out of the help endpoint
    assert 'position-prior-p1-t10-per__parsenet__circular__posnone__s2' in \
        text
    assert '1 did not' in text
    data = json.load(open(FIXTURE))
    zeros = {r['cell']['seed']: r['metrics']['mIoU_pairs']
             for r in data['cells'] if r['cell']['prior'] == 1.0 and
             r['cell']['padding'] == 'zeros'}
    circ = {r['cell']['seed']: r['metrics']['mIoU_pairs']
            for r in data['cells'] if r['cell']['prior'] == 1.0 and
            r['cell']['padding'] == 'circular' and
            r['convergence']['converged']}
    # the border comparison is zeros - circular, on units 0 and 1
    mean = sum(zeros[s] - circ[s] for s in circ) / len(circ)
    assert sorted(circ) == [0, 1]
    assert f'pairs mIoU {mean:+.1f} [' in text
    # the leak check is there, on the removal condition's circular arm
    assert '## Leak check' in text
    assert 'position-coded periodic | parsenet / circular / pos none | 3' \
        in text
    for word in ('no difference', 'matches', 'no effect', 'same as'):
        assert word not in text


@pytest.mark.parametrize('content, match', [
    ('not json {', 'not JSON'),
    ('{"format": "possec-study-results", "version": 2, "cells": []}',
     'version 2'),
    ('{"mIoU": 40.0}', 'expected "format": "possec-study-results"'),
    ('[1, 2]', 'a JSON list'),
])
def test_a_non_results_file_is_refused_in_one_line(tmp_path, content,
                                                   match):
    from possec.analysis.study.results import ResultsError, load_results
    from possec.errors import UserError
    path = tmp_path / 'x.json'
    path.write_text(content)
    with pytest.raises(ResultsError, match=match) as exc:
        load_results(str(path))
    assert isinstance(exc.value, UserError)
    assert '\n' not in str(exc.value)
    with pytest.raises(ResultsError, match='not found'):
        load_results(str(tmp_path / 'missing.json'))
    # nothing is written where the report would go
    out = tmp_path / 'out'
    with pytest.raises(ResultsError):
        _tool().report_only(str(path), str(out))
    assert not out.exists()


if __name__ == '__main__':
    import matplotlib
    hashes = pixel_hashes(sys.argv[1], [
        n for n in PNGS if osp.isfile(osp.join(sys.argv[1], n))])
    with open(osp.join(EXPECTED, 'pixels.json'), 'w') as f:
        json.dump(dict(matplotlib=matplotlib.__version__, sha256=hashes), f,
                  indent=1, sort_keys=True)
        f.write('\n')


def test_an_older_study_json_still_reports(tmp_path):
    """Records from before the results file (no code, convergence, data
    seed or doses; a plateau verdict) report, their missing keys read as
    unknown."""
    from possec.analysis.study.report import report_from_results
    records = []
    for seed in (0, 1):
        for padding, pairs in (('zeros', 90.0 + seed),
                               ('circular', 30.0 + 2 * seed)):
            records.append(dict(
                cell=dict(layout='position-coded', head='parsenet',
                          padding=padding, pos='none', seed=seed),
                name=f'position-coded__parsenet__{padding}__posnone__s'
                     f'{seed}',
                metrics=dict(mIoU=pairs, mIoU_pairs=pairs,
                             mIoU_others=80.0),
                probe=dict(spc=dict(H=0.1, V=0.2, G=0.0), mae={}),
                plateau=dict(plateau=False, rel_change=-0.2)))
    path = tmp_path / 'study.json'
    path.write_text(json.dumps(dict(settings=dict(data_seed=0),
                                    command=None, total=4, finished=4,
                                    results=records)))
    files = report_from_results(str(path), str(tmp_path / 'out'))
    text = open(files['markdown']).read()
    assert 'code version not recorded: 4 cells' in text
    assert '4 without a verdict' in text
    assert '0/2 plateaued' in text
    # the leak check reads the circular arm over seeds 0 and 1
    assert '| position-coded | parsenet / circular / pos none | 2 | 31.0' \
        in text
    # zeros - circular, paired by seed, outside the design's families
    assert "pairs mIoU +59.5 [" in text
    assert '(outside the design)' in text


def test_primary_section_says_which_primary_questions_are_unanswered(
        tmp_path):
    """A partial study lists every declared primary comparison: its
    verdict where both arms were run, and what it lacks elsewhere (a
    slope at one dose is not measured)."""
    from possec.analysis.study.design import PRIMARY
    from possec.analysis.study.report import report_from_results
    from possec.analysis.study.results import load_results, write_results
    data = load_results(FIXTURE)
    one_dose = [c for c in data['cells'] if c['cell'].get('prior') == 1.0]
    assert one_dose and len(one_dose) < len(data['cells'])
    path = write_results(str(tmp_path / 'partial.json'), one_dose,
                         data['settings'])
    report_from_results(path, str(tmp_path / 'out'))
    text = open(tmp_path / 'out' / 'study.md').read()
    section = text.split('## Primary comparisons', 1)[1].split('\n## ')[0]
    items = [line for line in section.splitlines() if line.startswith('- ')]
    assert len(items) == len(PRIMARY)
    by_name = {line.split(':', 1)[0][2:]: line for line in items}
    assert 'differs (primary' in by_name['help endpoint (parsenet, tilt 10, '
                                         'P=1)']
    assert ('not measured**: a slope needs both arms at two or more doses '
            '(these results hold P=1)') in by_name[
                'help slope (parsenet, tilt 10)']
    assert 'not measured' in by_name['hurt endpoint (parsenet, tilt 10, '
                                     'P=0.9)']
    # the whole fixture has two doses of help: its slope is judged
    full = open(osp.join(EXPECTED, 'study.md')).read()
    section = full.split('## Primary comparisons', 1)[1].split('\n## ')[0]
    slope = [line for line in section.splitlines()
             if line.startswith('- help slope')]
    assert len(slope) == 1 and 'slope per unit of P' in slope[0] and \
        'not measured' not in slope[0]


def test_unconverged_arms_are_counted_and_tabled(tmp_path):
    """Where no unit holds converged cells of both arms, the primary
    endpoint says how many cells of each arm ran and converged; each cell
    with two validations gets a row with their change."""
    from possec.analysis.study.report import report_from_results
    from possec.analysis.study.results import load_results, write_results
    data = load_results(FIXTURE)
    cells = [c for c in data['cells'] if c['cell'].get('prior') == 1.0]
    planted = {}
    for i, c in enumerate(cells):
        a, b = 50.0 + i, 50.0 + i + (5.5 if i % 2 else 0.5)
        c['convergence'] = dict(
            c['convergence'], values=[a, b], iters=[1200, 2400],
            key='mIoU_pairs', converged=abs(b - a) < 2.0,
            loss_plateau=dict(rel_change=-0.25))
        if c['cell']['padding'] == 'circular':
            c['convergence']['converged'] = False
        planted[c['name']] = (a, b, c['convergence']['converged'])
    path = write_results(str(tmp_path / 'planted.json'), cells,
                         data['settings'])
    report_from_results(path, str(tmp_path / 'out'))
    text = open(tmp_path / 'out' / 'study.md').read()
    n_circ = sum(c['cell']['padding'] == 'circular' for c in cells)
    zeros = [v for k, v in planted.items() if '__zeros__' in k]
    assert ('help endpoint (parsenet, tilt 10, P=1): **not measured**: no '
            'unit holds converged cells of both arms (parsenet / zeros / '
            f'pos none: {sum(ok for _, _, ok in zeros)} of {len(zeros)} '
            f'cells converged; parsenet / circular / pos none: 0 of '
            f'{n_circ} cells converged)') in text
    table = [line for line in text.splitlines()
             if line.startswith('| position-prior P=1')
             and '1200 / 2400' in line]
    assert len(table) == len(cells)
    for line in table:
        cols = [x.strip() for x in line.strip('|').split('|')]
        a, b = (float(x) for x in cols[5].split(' / '))
        assert float(cols[6]) == pytest.approx(b - a, abs=0.051)
        assert cols[7] == '-25%'
        assert (cols[8] == 'yes') == (abs(b - a) < 2.0 and
                                       'circular' not in cols[1])


def test_primary_endpoint_names_the_units_it_leaves_out(tmp_path):
    """A primary endpoint is judged over the units whose two cells
    converged, and its line says how many, which units it left out and
    whose cell failed the criterion (planted: one more circular cell
    fails than in the fixture)."""
    from possec.analysis.study.report import report_from_results
    from possec.analysis.study.results import (converged, load_results,
                                               unit, unit_name,
                                               write_results)
    data = load_results(FIXTURE)
    cells = [c for c in data['cells'] if c['cell'].get('prior') == 1.0]
    units = {unit(c) for c in cells}
    circular = sorted((c for c in cells if c['cell']['padding'] ==
                       'circular' and converged(c) is not False),
                      key=lambda c: c['name'])
    circular[0]['convergence'] = dict(circular[0]['convergence'],
                                      converged=False)
    failed = sorted((unit(c), c['cell']['padding']) for c in cells
                    if converged(c) is False)
    assert len(failed) >= 1 and len({u for u, _ in failed}) == len(failed)
    path = write_results(str(tmp_path / 'one_more.json'), cells,
                         data['settings'])
    report_from_results(path, str(tmp_path / 'out'))
    text = open(tmp_path / 'out' / 'study.md').read()
    line = [x for x in text.splitlines()
            if x.startswith('- help endpoint (parsenet, tilt 10, P=1)')]
    assert len(line) == 1
    named = ', '.join(f'{unit_name(u)} (parsenet / {pad} / pos none)'
                      for u, pad in failed)
    n = len(units) - len(failed)
    assert line[0].endswith(
        f'Over {n} unit{"s" * (n != 1)}; left out as not converged: '
        f'{named}.')
    # with every cell converged nothing is left out
    for c in cells:
        c['convergence'] = dict(c['convergence'], converged=True)
    path = write_results(str(tmp_path / 'all.json'), cells, data['settings'])
    report_from_results(path, str(tmp_path / 'all'))
    line = [x for x in open(tmp_path / 'all' / 'study.md').read().splitlines()
            if x.startswith('- help endpoint (parsenet, tilt 10, P=1)')]
    assert line[0].endswith(f'Over {len(units)} units; none left out.')


def test_windowed_cells_get_their_validation_curves(tmp_path):
    """Cells validated more than twice (a windowed convergence test) get a
    figure of the key metric at every validation with the judged windows;
    cells validated twice (every committed study so far) get none."""
    import matplotlib.image as mpimg
    from possec.analysis.study.report import (report_from_results,
                                              validation_curves)
    from possec.analysis.study.results import load_results, write_results
    data = load_results(FIXTURE)
    assert not validation_curves(data['cells'])
    cells = [c for c in data['cells'] if c['cell'].get('prior') == 1.0]
    iters = [40, 50, 60, 70, 80, 90, 100, 110, 120]
    for i, c in enumerate(cells):
        values = [60. + i + (k % 2) + 0.3 * k * (i + 1) * (-1) ** i
                  for k in range(len(iters))]
        c['validations'] = [dict(iter=it, metrics=dict(mIoU_pairs=v))
                            for it, v in zip(iters, values)]
        c['convergence'] = dict(
            c['convergence'], key='mIoU_pairs', converged=i != 1,
            iters=[80, 120], window_iters=[[60, 70, 80], [100, 110, 120]],
            tol=2.0)
    curves = validation_curves(cells)
    (layout, arms), = curves.items()
    planted = {c['name']: c for c in cells}
    seen = [run for runs in arms.values() for run in runs]
    assert len(seen) == len(cells)
    for run in seen:
        assert run['iters'] == iters
        assert run['windows'] == [(60, 80), (100, 120)]
    assert sorted(run['values'][0] for run in seen) == sorted(
        c['validations'][0]['metrics']['mIoU_pairs']
        for c in planted.values())
    path = write_results(str(tmp_path / 'windowed.json'), cells,
                         data['settings'])
    report_from_results(path, str(tmp_path / 'out'))
    png = mpimg.imread(str(tmp_path / 'out' / 'study_validations.png'))
    assert png.shape[0] > 100 and png.shape[1] > 100
    text = open(tmp_path / 'out' / 'study.md').read()
    assert 'study_validations.png' in text
    # and a row each in the validations table, read against numpy's
    # least-squares fit of the planted values
    rows = [line for line in text.splitlines()
            if line.startswith('| ') and ' (40-120) | ' in line]
    assert len(rows) == len(cells)
    words = set()
    for c in cells:
        values = [v['metrics']['mIoU_pairs'] for v in c['validations']]
        slope = np.polyfit(iters, values, 1)[0]
        span = c['convergence']['iters'][1] - c['convergence']['iters'][0]
        expected = (f"| {min(values):.1f}-{max(values):.1f} | "
                    f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f} "
                    f"| {slope * span:+.1f} [")
        assert sum(expected in r for r in rows) >= 1, expected
        # the trend's TOST against the cell's tolerance, by the formula
        tol = c['convergence']['tol']
        fit_slope, fit_icpt = np.polyfit(iters, values, 1)
        resid = np.asarray(values) - (fit_slope * np.asarray(iters) +
                                      fit_icpt)
        x = np.asarray(iters, dtype=float)
        se = math.sqrt(resid @ resid / (x.size - 2) /
                       ((x - x.mean()) @ (x - x.mean()))) * span
        change = fit_slope * span
        p = max(sps.t.sf((change + tol) / se, x.size - 2),
                sps.t.cdf((change - tol) / se, x.size - 2))
        word = 'shown' if p < 0.05 else 'not shown'
        assert sum(f'| ±{tol:g}: {word} ({p:.2g}) |' in r
                   for r in rows) >= 1, (word, p)
        words.add(word)
    assert words == {'shown', 'not shown'}  # the planted cells hit both


def test_each_criterion_is_stated_once_on_its_own_line():
    """An extended cell's criterion is the schedule's plus its extension:
    the report lists the distinct criteria one per line, each once."""
    from possec.analysis.study.report_sections import convergence_section
    plain = 'median of 7 validations, margin 2'
    extended = plain + '; extended from its saved state'
    records = [dict(name=n, convergence=dict(criterion=c, converged=v))
               for n, c, v in (('a', plain, True), ('b', extended, False),
                               ('c', plain, True))]
    lines = convergence_section(records).splitlines()
    assert [ln for ln in lines if plain in ln] == [f'- {plain}',
                                                    f'- {extended}']
    one = convergence_section(records[:1]).splitlines()
    assert f'Criterion: {plain}' in one and not any(
        ln.startswith('- ') for ln in one)


def test_validation_curves_tell_heads_apart(monkeypatch):
    """ParseNet with and without its global branch share a padding's
    colour; the figure draws the second dash-dotted with hollow markers,
    and an unconverged cell dotted whichever its head."""
    from possec.analysis.study import plots
    saved = []
    monkeypatch.setattr(plots, '_save', lambda fig, path: saved.append(fig))
    run = dict(iters=[10, 20, 30], values=[50., 51., 52.], windows=[],
               converged=True)
    curves = {'prior-shift P=0.9': {
        ('parsenet', 'zeros', 'none'): [run],
        ('parsenet-noglobal', 'zeros', 'none'): [
            run, dict(run, values=[40., 41., 42.], converged=False)]}}
    plots.plot_validation_curves(curves, 'unused.png')
    (fig,) = saved
    from matplotlib.colors import to_rgba
    lines = {(ln.get_ydata()[0], ln.get_linestyle(),
              to_rgba(ln.get_markerfacecolor()) == (1.0, 1.0, 1.0, 1.0))
             for ln in fig.axes[0].get_lines()}
    import matplotlib.pyplot as plt
    plt.close(fig)
    assert lines == {(50., '-', False), (50., '-.', True), (40., ':', True)}


def test_validation_curves_draw_position_minus_one_apart(monkeypatch):
    """This figure keeps dotted for cells that did not converge: the
    position -1 variant's converged cells draw a line neither solid nor
    dotted nor any other variant's, and its unconverged cells dotted."""
    from possec.analysis.study import plots
    import matplotlib.pyplot as plt
    saved = []
    run = dict(iters=[10, 20, 30], values=[50., 51., 52.], windows=[],
               converged=True)
    curves = {'position-prior P=1': {
        ('parsenet', 'zeros', '-1'): [
            run, dict(run, values=[40., 41., 42.], converged=False)],
        ('parsenet', 'zeros', '+1'): [dict(run, values=[60., 61., 62.])],
        ('parsenet', 'zeros', 'none'): [dict(run, values=[70., 71., 72.])]}}
    monkeypatch.setattr(plots, '_save', lambda fig, path: saved.append(fig))
    plots.plot_validation_curves(curves, 'unused.png')
    (fig,) = saved
    # matplotlib's own dash patterns for solid and dotted, as reference
    ref, ax = plt.subplots()
    solid, = ax.plot([0, 1], linestyle='-')
    dotted, = ax.plot([0, 1], linestyle=':')
    patterns = {ln.get_ydata()[0]: ln._unscaled_dash_pattern
                for ln in fig.axes[0].get_lines()}
    reference = (solid._unscaled_dash_pattern,
                 dotted._unscaled_dash_pattern)
    plt.close(fig)
    plt.close(ref)
    assert patterns[40.] == reference[1]  # not converged: dotted
    assert patterns[50.] not in reference
    assert len({patterns[50.], patterns[60.], patterns[70.]}) == 3


def test_validation_legend_names_each_variant_once(monkeypatch):
    """A variant with an unconverged cell in one panel only has one
    legend entry, which counts that cell; before, the panels labelled it
    differently and the legend listed it twice."""
    from possec.analysis.study import plots
    import matplotlib.pyplot as plt
    saved = []
    monkeypatch.setattr(plots, '_save', lambda fig, path: saved.append(fig))
    run = dict(iters=[10, 20, 30], values=[50., 51., 52.], windows=[],
               converged=True)
    key = ('parsenet', 'zeros', 'none')
    curves = {'P=0.5': {key: [run]},
              'P=0.9': {key: [run, dict(run, converged=False)]}}
    plots.plot_validation_curves(curves, 'unused.png')
    (fig,) = saved
    texts = [t.get_text() for legend in fig.legends
             for t in legend.get_texts()]
    plt.close(fig)
    assert texts == ['parsenet / zeros / pos none (1 not converged, dotted)']


def test_loss_and_band_legends_name_each_variant_once(monkeypatch):
    """The loss and band figures name a variant once in their legend,
    counting its unconverged cells over every panel, when those cells
    sit in one panel only (before, it was listed twice)."""
    from possec.analysis.study import plots
    import matplotlib.pyplot as plt
    saved = []
    monkeypatch.setattr(plots, '_save', lambda fig, path: saved.append(fig))
    key = ('parsenet', 'zeros', 'none')
    excluded = {'P=0.9': {key: [(0, 0)]}}
    plots.plot_loss_curves(
        {'P=0.5': {key: [([10, 20], [1.0, 0.5])]},
         'P=0.9': {key: [([10, 20], [1.0, 0.4])]}}, 'unused.png', excluded)
    seeds = {0: dict(band0=50., band1=60.)}
    plots.plot_bands({'P=0.5': {key: seeds}, 'P=0.9': {key: seeds}},
                     ['0-0.1', '0.1-0.2'], 'unused.png', excluded)
    texts = [[t.get_text() for legend in fig.legends
              for t in legend.get_texts()] for fig in saved]
    for fig in saved:
        plt.close(fig)
    want = ['parsenet / zeros / pos none (1 not converged, left out)']
    assert texts == [want, want]


def test_no_variant_line_is_dots_only():
    """Dotted marks an unconverged cell in the validations figure, so
    every position factor of the design (and FCN's dash-dot) must draw a
    line with a dash at least three times a dot of matplotlib's ':'
    (before, 'shift' drew (1, 1): dots only)."""
    from possec.analysis.study import plots
    from possec.analysis.study.design import POSITION
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    dot = max(ax.plot([0, 1], linestyle=':')[0]._unscaled_dash_pattern[1][
        ::2])
    patterns = {}
    for head in ('parsenet', 'fcn'):
        for pos in POSITION:
            style = plots._style((head, 'zeros', pos))
            line, = ax.plot([0, 1], linestyle=style['linestyle'])
            offset, seq = line._unscaled_dash_pattern
            patterns[head, pos] = tuple(seq) if seq else None
            if seq:  # None: solid
                assert max(seq[::2]) >= 3 * dot, (head, pos, seq)
    plt.close(fig)
    parsenet = [patterns['parsenet', pos] for pos in POSITION]
    assert len(set(parsenet)) == len(parsenet), patterns


def test_two_layer_probe_section_applies_its_rule_to_converged_cells():
    """The report's two-layer probe section: the acceptance rule's mean
    paired difference (two-layer minus linear mean SPC on zero padding
    without a position mechanism) equals numpy's over the converged
    cells, an unconverged cell is left out, and the verdict follows the
    sign."""
    from possec.analysis.study.report_sections import \
        nonlinear_probe_section
    with open(FIXTURE) as f:
        records = json.load(f)['cells']
    rng = np.random.default_rng(0)
    plain = []
    for r in records:
        r['probe_nonlinear'] = dict(
            spc={p: float(rng.uniform(-0.2, 0.9)) for p in 'HVG'},
            epochs=40, saturated=bool(rng.integers(2)),
            final_loss=float(rng.uniform(0.05, 0.3)))
        r['probe'] = dict(r['probe'], final_loss=float(rng.uniform(0.05,
                                                                   0.3)))
        c = r['cell']
        if c['padding'] == 'zeros' and c['pos'] == 'none':
            plain.append(r)
    assert len(plain) >= 3
    outlier = plain[0]
    outlier['convergence'] = dict(outlier['convergence'], converged=False)
    outlier['probe_nonlinear']['spc'] = dict(H=9.0, V=9.0, G=9.0)
    kept = plain[1:]
    diffs = [np.mean(list(r['probe_nonlinear']['spc'].values())) -
             np.mean(list(r['probe']['spc'].values())) for r in kept]
    text = nonlinear_probe_section(records, 'HVG')
    line = [x for x in text.splitlines()
            if x.startswith('Zero padding without')][0]
    assert f'{len(kept)} cells' in line
    assert f'{np.mean(diffs):+.3f}' in line
    assert f'from {min(diffs):+.3f} to {max(diffs):+.3f}' in line
    saturated = sum(r['probe_nonlinear']['saturated'] for r in kept)
    assert f'{saturated} of {len(kept)} two-layer' in line
    assert ('**accepted**' in line) == (np.mean(diffs) >= 0)
    # the training losses of the same cells, two-layer against linear
    two = [r['probe_nonlinear']['final_loss'] for r in kept]
    one = [r['probe']['final_loss'] for r in kept]
    above = int(np.sum(np.array(two) > np.array(one)))
    assert (f"above the linear readout's in {above} of {len(kept)} (mean "
            f"{np.mean(two):.3f} against {np.mean(one):.3f})") in line
    # the arm's row: the two-layer H column is the mean over its cells
    cond = [x for x in text.splitlines()
            if '| parsenet / zeros / pos none |' in x]
    assert cond
    h = np.mean([r['probe_nonlinear']['spc']['H'] for r in kept
                 if r['cell']['layout'] == kept[0]['cell']['layout']])
    assert any(f'| {h:.2f} |' in x for x in cond)
    # flipping every two-layer readout below the linear one rejects it
    for r in kept:
        r['probe_nonlinear']['spc'] = {
            p: v - 2.0 for p, v in r['probe']['spc'].items()}
    line = [x for x in nonlinear_probe_section(records, 'HVG').splitlines()
            if x.startswith('Zero padding without')][0]
    assert '**not accepted**' in line and '-2.000' in line
    # records without a two-layer readout: no section
    for r in records:
        r.pop('probe_nonlinear')
    assert nonlinear_probe_section(records, 'HVG') == ''


def _readout_side_of(convs: int) -> int:
    """The side a study readout ``convs`` deep predicts on the probe's
    grid, from the readout itself."""
    import torch
    from possec.analysis.probe import make_readout
    from possec.analysis.study.results import PROBE_GRID
    head = make_readout([2], ('H', ), grid=PROBE_GRID, num_convs=convs)
    return head([torch.zeros(1, 2, PROBE_GRID, PROBE_GRID)]).shape[-1]


@pytest.mark.parametrize('convs', [1, 2])
def test_a_readout_failed_above_twice_the_loss_of_ignoring_the_image(convs):
    """The threshold is FAILED_READOUT_RATIO times the loss of each
    map's spatial mean, computed here with numpy on the maps at the side
    the readout itself predicts."""
    from possec.analysis.study.results import (FAILED_READOUT_RATIO,
                                               probe_spc, readout_failed)
    from possec.position import position_maps
    side = _readout_side_of(convs)
    maps = position_maps(('H', 'V', 'G'), side)[0].double().numpy()
    base = float(sum(np.var(m) for m in maps))
    spc = dict(H=0.4, V=0.5, G=0.6)
    below = dict(spc=spc, convs=convs,
                 final_loss=FAILED_READOUT_RATIO * base * 0.99)
    above = dict(below, final_loss=FAILED_READOUT_RATIO * base * 1.01)
    assert readout_failed(below) is False
    assert readout_failed(above) is True
    assert readout_failed(dict(below, final_loss=float('nan'))) is True
    # records without a loss are not judged, and keep their SPC
    assert readout_failed(dict(spc=spc)) is None
    assert probe_spc(dict(spc=spc)) == spc
    assert probe_spc(below) == spc
    assert probe_spc(above) == dict(H=None, V=None, G=None)


def test_a_failed_readouts_spc_is_withheld_from_the_report():
    """A cell whose linear readout failed: no SPC in its values, its unit
    leaves the SPC comparisons (their n drops by one while the key
    metric's does not) and the report's readout section names it with
    its loss ratio."""
    from possec.analysis.study.aggregate import cell_values
    from possec.analysis.study.report import judged_rows
    from possec.analysis.study.report_sections import readout_section
    from possec.analysis.study.results import condition
    with open(FIXTURE) as f:
        records = json.load(f)['cells']
    assert readout_section(records) == ''   # no losses recorded: silent
    before = judged_rows(copy.deepcopy(records))
    target = next(r for r in records if r['cell']['layout'] ==
                  'position-coded' and r['cell']['padding'] == 'zeros'
                  and r['cell']['pos'] == 'none')
    from possec.position import position_maps
    maps = position_maps(('H', 'V', 'G'), _readout_side_of(1))[0]
    base = float(sum(np.var(m) for m in maps.double().numpy()))
    for r in records:
        r['probe'] = dict(r['probe'], convs=1, final_loss=0.5 * base)
    target['probe']['final_loss'] = 4 * base
    assert cell_values(target)['spc'] is None
    assert all(cell_values(target)[f'SPC_{p}'] is None for p in 'HVG')
    after = judged_rows(records)
    arm_name = 'parsenet / zeros / pos none'
    unit_of = (target['cell']['seed'], target['cell'].get('data_seed', 0))
    touched = 0
    for old, new in zip(before, after):
        assert new['label'] == old['label']
        key = next(k for k in new['verdicts'] if k != 'spc')
        assert new['verdicts'][key]['stats']['n'] == \
            old['verdicts'][key]['stats']['n']
        seeds = [tuple(u) for u in old['verdicts']['spc']['stats']['seeds']]
        n_old = old['verdicts']['spc']['stats']['n']
        n_new = new['verdicts']['spc']['stats']['n']
        if (new['condition'] == condition(target) and arm_name in
                new['label'] and unit_of in seeds):
            assert n_new == n_old - 1
            touched += 1
        else:
            assert n_new == n_old
    assert touched >= 1
    text = readout_section(records)
    assert f'1 of {len(records)} readouts failed' in text
    row = next(x for x in text.splitlines() if target['name'] in x)
    assert f'| {4 * base:.3f} | {base:.3f} | 4.0 |' in row


def test_progress_line_says_when_a_readout_failed():
    from types import SimpleNamespace
    from possec.analysis.study.results import baseline_of
    from possec.analysis.study.run import progress_line
    base = baseline_of('HVG', 1)
    result = dict(metrics=dict(mIoU=90.0), time_s=dict(total=5.0),
                  probe=dict(spc=dict(H=0.0, V=0.1, G=0.0), convs=1,
                             final_loss=4 * base))
    cell = SimpleNamespace(label='parsenet / zeros / pos erase')
    assert 'readout failed to train' in progress_line(1, 4, cell, result)
    result['probe']['final_loss'] = 0.5 * base
    assert 'readout failed' not in progress_line(1, 4, cell, result)
