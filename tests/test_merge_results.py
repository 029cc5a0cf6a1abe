"""docs/results/merge_results.py --rerun-failed: a committed record is
replaced by a new run of the same cell only when it failed its
convergence test, and the replaced record's verdict and value stay in
the results file."""

import pytest

from .conftest import load_script


merge = load_script('docs', 'results', 'merge_results.py')
CELL = dict(layout='position-prior', head='parsenet', padding='circular',
            seed=3)


def _record(name, converged, value, last_iter=9600, cell=CELL,
            before=()):
    points = ((4200, 80.0),) + tuple(before) + ((last_iter, value),)
    return dict(name=name, cell=dict(cell), code=dict(commit='c' * 40),
                validations=[dict(iter=i, metrics=dict(mIoU_pairs=v))
                             for i, v in points],
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
    # its validation at 9600 is not the committed one's
    assert out[1]['rerun_of'] == dict(
        code=dict(commit='c' * 40), value=84.4, last_iter=9600,
        first_difference=9600,
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


def test_a_rerun_that_repeats_the_failed_run_then_extends_it():
    old = [_record('b', False, 84.4)]
    # the same validations to 9600, then an extension's
    rerun = _record('b', True, 88.0, last_iter=14400,
                    before=((9600, 84.4),))
    out = merge.replace_failed(old, [rerun])
    assert out[0]['rerun_of']['first_difference'] is None
    # one validation apart (80.0 against 80.5 at 4200): differs from there
    other = dict(rerun, validations=[dict(iter=4200, metrics=dict(
        mIoU_pairs=80.5))] + rerun['validations'][1:])
    out = merge.replace_failed(old, [other])
    assert out[0]['rerun_of']['first_difference'] == 4200


def test_the_report_names_each_rerun_and_what_it_replaced():
    from possec.analysis.study.report_sections import convergence_section
    old = [_record('a', True, 90.0), _record('b', False, 84.4),
           _record('c', False, 70.0)]
    reruns = [_record('b', True, 88.0, last_iter=14400),
              _record('c', True, 88.0, last_iter=14400,
                      before=((9600, 70.0),))]
    text = convergence_section(merge.replace_failed(old, reruns))
    assert ('Run again in place of a record that failed the test' in text
            and 'b (before: 84.4 at 9600, -3.7, not converged, commit '
            'ccccccc; differs from the validation at 9600 on)' in text
            and 'c (before: 70.0 at 9600, -3.7, not converged, commit '
            'ccccccc; repeats its validations to 9600, value for value)'
            in text)
    assert 'Run again' not in convergence_section(old)


def test_nan_in_a_rerun_repeats_the_null_the_results_file_wrote():
    old = _record('b', False, 84.4)
    old['validations'][0]['metrics']['band0'] = None  # NaN as written
    rerun = _record('b', True, 88.0, last_iter=14400,
                    before=((9600, 84.4),))
    rerun['validations'][0]['metrics']['band0'] = float('nan')
    out = merge.replace_failed([old], [rerun])
    assert out[0]['rerun_of']['first_difference'] is None
