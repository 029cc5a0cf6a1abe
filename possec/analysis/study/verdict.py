"""Verdicts of the position study's comparisons, and the only words the
generated reading may use for them.

A comparison row (from :mod:`.aggregate` or :mod:`.dose`) carries
``stats`` (column -> paired statistics with ``diffs``) and ``judged``: the
columns it is judged on, each as ``(column, primary, family)``. For every
judged column :func:`judge` adds the two-sided test and TOST
(:mod:`.inference`), Holm's correction within the family (secondary
columns only; the test p values and the TOST p values form separate
families) and the verdict:

- ``differs``: for a primary column when its 95% interval excludes 0, for
  a secondary one when its Holm-adjusted p value is below 0.05;
- ``equivalent``: TOST rejects both one-sided nulls at 0.05 against the
  column's margin (:data:`.design.MARGINS`; Holm-adjusted for a
  secondary column);
- ``not shown``: neither;
- ``not judged``: fewer than 2 units.

:func:`sentence` turns a verdict into the report's words: "differs",
"equivalent within +-m (TOST p=...)" or "not shown". Nothing else is said
about a comparison.
"""
from typing import Dict, List, Optional, Sequence

from .design import MARGINS
from .inference import ALPHA, difference_test, holm, tost
from .stats import plain_contrast

__all__ = ['margin_of', 'judge', 'sentence', 'KEY_WORDS']

#: The margin of the mIoU columns, in points.
MIOU_MARGIN = MARGINS.get('mIoU', MARGINS.get('miou'))
#: The verdicts, and nothing else.
KEY_WORDS = ('differs', 'equivalent', 'not shown', 'not judged')


def margin_of(column: str) -> Optional[float]:
    """The equivalence margin of a column (:data:`.design.MARGINS`): SPC
    columns take the ``spc`` margin, the mIoU and band columns the
    ``mIoU`` one; None for others (e.g. a slope, which has no declared
    margin)."""
    if column in MARGINS and column != 'miou':
        return MARGINS[column]
    if column == 'spc' or column.startswith('SPC'):
        return MARGINS['spc']
    if column.startswith('mIoU') or column.startswith('band'):
        return MIOU_MARGIN
    return None


def _augment(st: dict, column: str) -> None:
    """Add ``p``, ``tost`` and ``margin`` to one column's statistics."""
    diffs = st.get('diffs') or []
    st['p'] = difference_test(diffs)['p'] if diffs else None
    margin = margin_of(column)
    st['margin'] = margin
    st['tost'] = tost(diffs, margin) if margin and diffs else None


def judge(rows: Sequence[dict], alpha: float = ALPHA) -> List[dict]:
    """Add ``verdicts`` (column -> verdict dict) to every row, in place.

    A verdict dict holds ``verdict`` (one of :data:`KEY_WORDS`),
    ``primary``, ``family``, ``p_holm`` and ``tost_p_holm`` (None for a
    primary column) and the column's statistics under ``stats``.

    Returns:
        list[dict]: ``rows``.
    """
    families: Dict[str, list] = {}
    for row in rows:
        row['verdicts'] = {}
        for column, primary, family in row['judged']:
            st = row['stats'][column]
            if 'p' not in st:
                _augment(st, column)
            v = dict(column=column, primary=bool(primary), family=family,
                     p_holm=None, tost_p_holm=None, stats=st)
            row['verdicts'][column] = v
            if not primary:
                families.setdefault(family, []).append(v)
    for members in families.values():
        p = holm([v['stats']['p'] for v in members], alpha)['adjusted']
        tp = holm([(v['stats']['tost'] or {}).get('p') for v in members],
                  alpha)['adjusted']
        for v, a, b in zip(members, p, tp):
            v['p_holm'], v['tost_p_holm'] = a, b
    for row in rows:
        for v in row['verdicts'].values():
            v['verdict'] = _verdict(v, alpha)
    return list(rows)


def _verdict(v: dict, alpha: float) -> str:
    st = v['stats']
    if st.get('ci_low') is None or st.get('n', 0) < 2:
        return 'not judged'
    if v['primary']:
        differs = st['ci_low'] > 0 or st['ci_high'] < 0
        tost_p = (st['tost'] or {}).get('p')
    else:
        differs = v['p_holm'] is not None and v['p_holm'] < alpha
        tost_p = v['tost_p_holm']
    v['equivalent'] = tost_p is not None and tost_p < alpha
    v['tost_p_used'] = tost_p
    if differs:
        return 'differs'
    return 'equivalent' if v['equivalent'] else 'not shown'


def sentence(v: dict, name: str, digits: int = 1) -> str:
    """One clause: ``pairs mIoU +3.1 [+1.2, +5.0] differs (secondary,
    Holm p=0.012)``, ``... equivalent within ±2 (TOST p=0.031)`` or ``...
    not shown``."""
    st = v['stats']
    text = plain_contrast(st, digits, name)
    kind = 'primary' if v['primary'] else f"family '{v['family']}'"
    if v['verdict'] == 'not judged':
        return text + ' - not judged (needs at least 2 units)'
    margin = st.get('margin')
    tost_p = v.get('tost_p_used')
    tost_p = None if tost_p is None else (
        '<0.001' if tost_p < 0.001 else f'={tost_p:.3f}')
    equiv = (f"equivalent within ±{margin:g} (TOST p{tost_p}"
             f"{'' if v['primary'] else ', Holm-adjusted'})"
             if v.get('equivalent') else None)
    if v['verdict'] == 'differs':
        why = ('95% CI excludes 0' if v['primary'] else
               f"Holm p={v['p_holm']:.3g}")
        text += (f" - differs ({kind}, {why}): the variant is "
                 f"{'higher' if st['mean'] > 0 else 'lower'}")
        if equiv:
            text += f'; the difference is {equiv}'
        return text
    if equiv:
        return f'{text} - {equiv} ({kind})'
    return f'{text} - not shown ({kind})'
