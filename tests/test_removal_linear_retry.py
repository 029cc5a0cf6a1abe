"""The committed linear-probe retry on the removal test's backbones
(docs/results/removal_linear_retry.json) re-derives: its contrasts from
its cells with scipy, its cells are the removal results' cells, and the
study's failed-readout rule reads its readouts as trained."""
import json
import os.path as osp

import numpy as np
import pytest
from scipy import stats as sps

from possec.analysis.study.results import readout_failed

from .conftest import ROOT

RETRY = osp.join(ROOT, 'docs', 'results', 'removal_linear_retry.json')
REMOVAL = osp.join(ROOT, 'docs', 'results', 'position_study_removal.json')


@pytest.fixture(scope='module')
def retry():
    with open(RETRY) as f:
        return json.load(f)


def _arm(cell):
    return 'circular' if cell['padding'] == 'circular' else cell['pos']


def test_contrasts_rederive_with_scipy(retry):
    means = {}
    for c in retry['cells']:
        spc = c['probe']['spc']
        if c['converged'] is not False and not readout_failed(c['probe']):
            means.setdefault(_arm(c['cell']), {})[c['unit']] = float(
                np.mean(list(spc.values())))
    assert retry['contrasts']
    for row in retry['contrasts']:
        a, b = means[row['variant']], means[row['reference']]
        units = sorted(set(a) & set(b))
        assert sorted(row['units']) == units
        d = np.array([a[u] - b[u] for u in units])
        assert row['mean'] == pytest.approx(d.mean(), abs=1e-12)
        if len(d) > 1:
            half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(
                len(d))
            assert row['ci_low'] == pytest.approx(d.mean() - half, abs=1e-9)
            assert row['ci_high'] == pytest.approx(d.mean() + half,
                                                   abs=1e-9)
            assert row['p'] == pytest.approx(
                sps.ttest_1samp(d, 0.).pvalue, rel=1e-9)


def test_cells_are_the_removal_results_cells(retry):
    with open(REMOVAL) as f:
        removal = {r['name']: r for r in json.load(f)['cells']}
    assert len(retry['cells']) == len(removal)
    for c in retry['cells']:
        assert c['recorded'] == removal[c['name']]['probe']
        assert c['converged'] == removal[c['name']]['convergence'][
            'converged']
        assert c['probe']['epochs'] == retry['epochs']


def test_the_retry_trains_where_the_study_readout_failed(retry):
    """Every erased and shift-consistent cell: the study's readout
    failed, the retry's did not."""
    removed = [c for c in retry['cells'] if c['cell']['pos'] in ('erase',
                                                                  'shift')]
    # two removed arms per unit of the removal file
    units = {(c['cell']['seed'], c['cell']['data_seed'])
             for c in retry['cells']}
    assert len(units) >= 5 and len(removed) == 2 * len(units)
    for c in removed:
        assert readout_failed(c['recorded']) is True
        assert readout_failed(c['probe']) is False
