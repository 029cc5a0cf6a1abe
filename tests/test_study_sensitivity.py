"""The sensitivity section: the design's comparisons with each cell's key
metric read as the median of its last validation window; checked against
the t-interval of the medians' paired differences (scipy) and against the
declared values, which it must leave alone."""
import numpy as np
from scipy import stats as sps

from possec.analysis.study.report import format_markdown, judged_rows
from possec.analysis.study.sensitivity import (end_median_records,
                                               end_median_section)
from tests.test_study_comparisons import _record


def _windowed(record, last, window_median):
    """The record with its last validation ``last`` (the declared value)
    and the median of its end window ``window_median``."""
    record['metrics'].update(mIoU=last, mIoU_pairs=last)
    record['convergence'].update(key='mIoU_pairs', window=7,
                                 values=[window_median - 0.5, window_median])
    return record


# per unit: zeros (last, median), circular (last, median); unit 2's
# circular cell dipped at its last validation
UNITS = {0: ((20.0, 21.0), (86.0, 85.0)), 1: ((25.0, 24.0), (84.0, 86.0)),
         2: ((22.0, 22.0), (63.7, 86.5))}


def _records():
    records = []
    for seed, ((zl, zm), (cl, cm)) in UNITS.items():
        records.append(_windowed(_record('prior-shift', 'zeros', seed, zl,
                                         prior=0.9, tilt=10.0), zl, zm))
        records.append(_windowed(_record('prior-shift', 'circular', seed,
                                         cl, prior=0.9, tilt=10.0), cl, cm))
    return records


def _ci(diffs):
    diffs = np.asarray(diffs)
    half = sps.t.ppf(0.975, len(diffs) - 1) * sps.sem(diffs)
    return diffs.mean(), diffs.mean() - half, diffs.mean() + half


def test_medians_replace_the_key_metric_only():
    records = _records()
    medians = end_median_records(records)
    for r, m in zip(records, medians):
        assert m['metrics']['mIoU_pairs'] == r['convergence']['values'][-1]
        assert m['metrics']['mIoU'] == r['metrics']['mIoU']
    # the declared records are not touched
    assert records[5]['metrics']['mIoU_pairs'] == 63.7
    # records judged on one validation (or before convergence records)
    # have no window: nothing to compare
    for r in records:
        r['convergence']['window'] = 1
    assert end_median_records(records) is None
    assert end_median_records([dict(metrics=dict(mIoU=1.0))]) is None


def test_section_states_both_differences_with_their_intervals():
    records = _records()
    rows = judged_rows(records)
    table = end_median_section(rows, judged_rows(end_median_records(records)))
    line = next(t for t in table.splitlines()
                if t.startswith('| parsenet / zeros'))
    declared = _ci([z[0] - c[0] for z, c in UNITS.values()])
    medians = _ci([z[1] - c[1] for z, c in UNITS.values()])
    cells = [c.strip() for c in line.strip('|').split('|')]
    assert cells[1] == '3'
    for text, (mean, lo, hi) in ((cells[2], declared), (cells[4], medians)):
        assert text == f'pairs mIoU {mean:+.1f} [{lo:+.1f}, {hi:+.1f}]'
    # the one dipped validation is what separates the two readings
    assert abs(declared[0] - medians[0]) > 5
    # and the report carries the section only where cells have windows
    report = format_markdown(records, {}, None, len(records), {})
    assert '## Sensitivity' in report and line in report
    for r in records:
        r['convergence'].pop('window')
    assert '## Sensitivity' not in format_markdown(records, {}, None,
                                                   len(records), {})
