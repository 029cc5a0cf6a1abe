"""How much the comparisons depend on one validation: each cell's key
metric read as the median of its last validation window instead of its
last validation.

A cell's value is, as the study declares, its key metric at the end of
its schedule (or of its extension): one validation. The windowed
convergence criterion (:mod:`.convergence`) already reads the median of
the last k validations at that end, because one validation can land in a
transient of the training. This section re-runs the design's comparisons
with that median in place of the last validation, so that a reader sees
whether a difference rests on one validation. It was added after runs in
which a converged cell's last validation dipped (by 23 points) while its
window's median did not: it is a sensitivity reading, descriptive, and
the declared value stays the one the study's verdicts use.
"""
from typing import List, Optional, Sequence

from .report_sections import NAMES, verdict_cell
from .stats import plain_contrast

__all__ = ['end_median_records', 'end_median_section']


def end_median_records(records: Sequence[dict]) -> Optional[List[dict]]:
    """Copies of ``records`` whose key metric is the median of the last
    validation window (``convergence['values'][-1]``) where the cell was
    judged on a window of more than one validation; None when no cell
    was (then there is nothing to compare)."""
    out, changed = [], False
    for r in records:
        conv = r.get('convergence') or {}
        key, values = conv.get('key'), conv.get('values')
        if (conv.get('window') or 1) > 1 and values and \
                key in (r.get('metrics') or {}):
            r = dict(r, metrics=dict(r['metrics'], **{key: values[-1]}))
            changed = True
        out.append(r)
    return out if changed else None


def end_median_section(rows: Sequence[dict],
                       median_rows: Sequence[dict]) -> str:
    """The section: per judged comparison (kind comparison or interaction)
    its key column's difference on the last validations (the declared
    value) and on the end-window medians, each with its verdict.
    ``median_rows`` are the same comparisons judged on
    :func:`end_median_records` (matched by label)."""
    by_label = {r['label']: r for r in median_rows}
    heads = ['comparison', 'units', 'Δ key, last validation (declared)',
             'verdict', 'Δ key, medians of the last window',
             'verdict on the medians']
    lines = ['## Sensitivity: a cell\'s value as the median of its last '
             'window', '',
             'A cell\'s value is its last validation (declared); here the '
             'same comparisons read each cell as the median of the '
             'validations of its last convergence window instead. '
             'Descriptive: the verdicts of the study are those above.', '',
             f'| {" | ".join(heads)} |', '|' + '---|' * len(heads)]
    for r in rows:
        other = by_label.get(r['label'])
        if r['kind'] not in ('comparison', 'interaction') or other is None:
            continue
        key = r['judged'][0][0]
        v, m = r['verdicts'][key], other['verdicts'].get(key)
        if m is None or v['stats'].get('mean') is None:
            continue
        name = NAMES.get(key, key)
        lines.append('| ' + ' | '.join([
            r['label'], str(v['stats'].get('n', 0)),
            plain_contrast(v['stats'], name=name), verdict_cell(v),
            plain_contrast(m['stats'], name=name), verdict_cell(m)]) + ' |')
    return '\n'.join(lines)
