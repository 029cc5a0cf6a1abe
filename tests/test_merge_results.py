"""docs/results/merge_results.py --rerun-failed: a committed record is
replaced by a new run of the same cell only when it failed its
convergence test, and the replaced record's verdict and value stay in
the results file."""
import importlib.util
import os.path as osp

import pytest

from .conftest import ROOT


def _module():
    path = osp.join(ROOT, 'docs', 'results', 'merge_results.py')
    spec = importlib.util.spec_from_file_location('merge_results', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


merge = _module()
CELL = dict(layout='position-prior', padding='circular', seed=3)


def _record(name, converged, value, last_iter=9600, cell=CELL):
    return dict(name=name, cell=dict(cell), code=dict(commit='c' * 40),
                validations=[dict(iter=i, metrics=dict(mIoU_pairs=v))
                             for i, v in ((4200, 80.0), (last_iter, value))],
                convergence=dict(key='mIoU_pairs', converged=converged,
                                 change=-3.7),
                metrics=dict(mIoU_pairs=value))


def test_a_rerun_replaces_the_failed_record_in_place():
    old = [_record('a', True, 90.0), _record('b', False, 84.4),
           _record('c', False, 77.1)]
    new = [_record('b', True, 88.0, last_iter=14400),
           _record('d', True, 91.0)]
    out = merge.replace_failed(old, new)
    assert [r['name'] for r in out] == ['a', 'b', 'c', 'd']
    assert out[0] is old[0] and out[2] is old[2]
    assert out[1]['metrics']['mIoU_pairs'] == 88.0
    assert out[1]['rerun_of'] == dict(
        code=dict(commit='c' * 40), value=84.4, last_iter=9600,
        convergence=dict(key='mIoU_pairs', converged=False, change=-3.7))
    assert 'rerun_of' not in out[3]


@pytest.mark.parametrize('committed, words', [
    (_record('a', True, 90.0), 'did not fail'),
    (_record('a', None, 90.0), 'did not fail'),
    (_record('a', False, 84.4, cell=dict(CELL, seed=4)), 'another cell'),
])
def test_a_rerun_of_a_passing_record_or_of_another_cell_is_refused(
        committed, words):
    with pytest.raises(SystemExit, match=words):
        merge.replace_failed([committed], [_record('a', True, 88.0)])


def test_the_report_names_each_rerun_and_what_it_replaced():
    from possec.analysis.study.report_sections import convergence_section
    old = [_record('a', True, 90.0), _record('b', False, 84.4)]
    rerun = _record('b', True, 88.0, last_iter=14400)
    text = convergence_section(merge.replace_failed(old, [rerun]))
    assert ('Run again in place of a record that failed the test' in text
            and 'b (before: 84.4 at 9600, -3.7, not converged, commit '
            'ccccccc)' in text)
    assert 'Run again' not in convergence_section(old)
