"""The design's comparisons on a study's records: paired differences,
dose-response slopes and interactions, ready to be judged.

Every comparison of :func:`.design.comparisons` whose two arms have cells
on its condition gives a row: the per-unit differences ``variant -
reference`` of the key column and the other report columns, paired by
unit (training seed and data seed, :mod:`.inference`); a comparison that
two contrasts share (ParseNet's border comparison at the curves' ends is
in help or hurt and in context) is a row of the first only. Cells whose
convergence verdict is False are left out (and counted per row). Along a
contrast with a ``dose`` (help: ``position-prior``; hurt:
``prior-shift``), the rows of one arm pair, cue strength (tilt) and kind
of data form a dose-response curve, whose slope against the prior is a
row of its own (:func:`.inference.dose_slope`). The context contrast's
``interactions`` give rows of the difference of one head minus the same
difference of its base head, paired by unit. Each row says which columns
it is judged on, primary or in which family (:mod:`.verdict`): the
design's key column as the design declares it (:data:`.design.PRIMARY`),
and the probe's SPC as a secondary column in the family's SPC family.
"""
import math
from collections import OrderedDict
from typing import Dict, List, Sequence

from .aggregate import CONTRAST_KEYS, cell_values
from .design import CONTRASTS, PRIMARY, comparisons, variant_name
from .inference import dose_slope
from .results import arm, cell_fields, condition, converged, unit
from .stats import interval, paired_contrast, paired_differences

__all__ = ['design_rows', 'dose_curves', 'endpoint_units']


def _f(value):
    return None if value is None else round(float(value), 6)


def _ckey(layout, prior, val_prior, tilt, periodic) -> tuple:
    return (layout, _f(prior), _f(val_prior), _f(tilt),
            periodic if isinstance(periodic, str) else bool(periodic))


def _keyed(records: Sequence[dict]):
    """Each record with its ``(condition key, arm)`` key, in order."""
    for r in records:
        c = cell_fields(r)
        ck = _ckey(c['layout'], c['prior'], c['val_prior'], c['tilt'],
                   c['periodic'])
        yield (ck, arm(r)), r


def _index(records: Sequence[dict]):
    """``{(condition key, arm): {unit: values}}`` of the converged (or
    unjudged) cells, the units left out per key, and the report's
    condition name per key."""
    cells: Dict[tuple, Dict[object, dict]] = {}
    left_out: Dict[tuple, list] = {}
    names = {}
    for key, r in _keyed(records):
        names[key[0]] = condition(r)
        if converged(r) is False:
            left_out.setdefault(key, []).append(unit(r))
        else:
            cells.setdefault(key, OrderedDict())[unit(r)] = cell_values(r)
    return cells, left_out, names


def _num(value):
    return None if value is None or not math.isfinite(float(value)) else \
        float(value)


def _column(units: Dict[object, dict], col: str) -> Dict[object, float]:
    return {u: _num(v.get(col)) for u, v in units.items()}


def _columns(key: str) -> List[str]:
    return [key] + [c for c, _ in CONTRAST_KEYS if c != key]


def _left_out(cells: dict, left_out: dict, *keys) -> list:
    """The units a comparison of arms ``keys`` leaves out as not
    converged: those where every arm has a cell and one failed (a unit
    missing an arm's cell is not a left-out unit, it is not run)."""
    def run(key):
        return set(cells.get(key, {})) | set(left_out.get(key, []))
    both = set.intersection(*(run(k) for k in keys))
    failed = set().union(*(left_out.get(k, []) for k in keys))
    return sorted(failed & both, key=str)


def _failed_arms(left_out: dict, *keys) -> Dict[object, List[str]]:
    """``{unit: [arm name, ...]}``: whose cell of each left-out unit
    failed the convergence criterion, of the arms ``keys``."""
    out = {}
    for key in keys:
        for u in left_out.get(key, []):
            out.setdefault(u, []).append(variant_name(key[1]))
    return {u: sorted(names) for u, names in out.items()}


def endpoint_units(records: Sequence[dict]) -> List[dict]:
    """The primary endpoints' comparisons unit by unit, every unit that
    holds a cell of both arms, converged or not: what an endpoint's
    interval is made of, and what it leaves out.

    Returns:
        list[dict]: One per (primary comparison, unit), in design order,
        then by data seed and training seed: ``contrast``, ``head``,
        ``tilt``, ``prior`` (to find its :data:`.design.PRIMARY` entry),
        ``label`` (``variant - reference``), ``key`` (the key column),
        ``unit``, ``variant`` and ``reference`` (the two cells' key
        values), ``diff`` (variant - reference), ``spc_diff`` (the same
        of the probe's mean SPC; None where a cell lacks it), ``used``
        (both cells converged or have no verdict: the unit is in the
        interval) and ``failed`` (the names of the arms whose cell
        failed the criterion).
    """
    by_arm: Dict[tuple, Dict[object, dict]] = {}
    for key, r in _keyed(records):
        by_arm.setdefault(key, OrderedDict())[unit(r)] = r
    out, seen = [], set()
    for comp in comparisons():
        cond = comp.condition
        ck = _ckey(cond.layout, cond.prior, cond.val_prior, cond.tilt,
                   cond.periodic)
        pair = ((ck, tuple(comp.variant)), (ck, tuple(comp.reference)))
        if not comp.primary or pair in seen:
            continue
        seen.add(pair)
        var, ref = by_arm.get(pair[0], {}), by_arm.get(pair[1], {})
        for u in sorted(set(var) & set(ref), key=_data_seed_major):
            a, b = cell_values(var[u]), cell_values(ref[u])
            failed = sorted(variant_name(arm(r)) for r in (var[u], ref[u])
                            if converged(r) is False)
            out.append(dict(
                contrast=comp.contrast, head=comp.variant.head,
                tilt=cond.tilt, prior=cond.prior, key=comp.key, unit=u,
                label=(f'{variant_name(comp.variant)} - '
                       f'{variant_name(comp.reference)}'),
                variant=_num(a.get(comp.key)),
                reference=_num(b.get(comp.key)),
                diff=_diff(a.get(comp.key), b.get(comp.key)),
                spc_diff=_diff(a.get('spc'), b.get('spc')),
                used=not failed, failed=failed))
    return out


def _data_seed_major(u) -> tuple:
    """Sort key of a unit: data seed, then training seed."""
    return (u[1], u[0]) if isinstance(u, tuple) else (-1, u)


def _diff(a, b):
    a, b = _num(a), _num(b)
    return None if a is None or b is None else a - b


def design_rows(records: Sequence[dict]) -> List[dict]:
    """The rows of every design comparison, slope and interaction the
    records allow.

    Returns:
        list[dict]: ``kind`` ('comparison', 'slope' or 'interaction'),
        ``contrast``, ``layout``, ``condition`` (the report's name),
        ``head``, ``variant`` and ``reference`` (arm tuples), ``label``,
        ``headline`` (a primary row), ``interaction`` (bool), ``stats``
        (column -> statistics with ``diffs``), ``judged`` (see
        :mod:`.verdict`), ``not_converged`` (units left out) and, on a
        comparison row, ``failed_arms`` (whose cell each failed); a
        comparison row on a dose contrast also has ``dose`` (the prior),
        ``val_prior``, ``tilt``, ``periodic`` and ``curve`` (its curve's
        label).
    """
    cells, left_out, names = _index(records)
    rows, curves, seen = [], OrderedDict(), set()
    for comp in comparisons():
        cond = comp.condition
        ck = _ckey(cond.layout, cond.prior, cond.val_prior, cond.tilt,
                   cond.periodic)
        vkey, rkey = (ck, tuple(comp.variant)), (ck, tuple(comp.reference))
        if vkey not in cells or rkey not in cells or (vkey, rkey) in seen:
            continue  # a comparison two contrasts share counts once
        seen.add((vkey, rkey))
        stats = {col: paired_contrast(_column(cells[vkey], col),
                                      _column(cells[rkey], col))
                 for col in _columns(comp.key)}
        v, r = variant_name(comp.variant), variant_name(comp.reference)
        row = dict(kind='comparison', contrast=comp.contrast,
                   layout=cond.layout, condition=names[ck],
                   head=comp.variant.head, variant=tuple(comp.variant),
                   reference=tuple(comp.reference),
                   label=f'{v} - {r} ({names[ck]})',
                   headline=comp.primary, interaction=False, stats=stats,
                   judged=[(comp.key, comp.primary, comp.family),
                           ('spc', False, f'{comp.family}, SPC')],
                   not_converged=_left_out(cells, left_out, vkey, rkey),
                   failed_arms=_failed_arms(left_out, vkey, rkey))
        rows.append(row)
        if CONTRASTS[comp.contrast].get('dose'):
            curve = (comp.contrast, tuple(comp.variant),
                     tuple(comp.reference), _f(cond.tilt), cond.periodic)
            label = (f'{comp.contrast}: {v} - {r}' +
                     ('' if cond.tilt is None else f', tilt {cond.tilt:g}')
                     + (', periodic' if cond.periodic else ''))
            row.update(dose=cond.prior, val_prior=cond.val_prior,
                       tilt=cond.tilt, periodic=cond.periodic, curve=label,
                       key=comp.key)
            curves.setdefault(curve, []).append(row)
    rows += _slopes(curves) + _interactions(rows)
    return rows


def _slopes(curves: Dict[tuple, List[dict]]) -> List[dict]:
    """A slope row per curve of at least two doses."""
    out = []
    for (contrast, variant, reference, tilt, periodic), points in \
            curves.items():
        if len({p['dose'] for p in points}) < 2:
            continue
        family = CONTRASTS[contrast]['family']
        key = points[0]['key']
        primary = any(p['contrast'] == contrast and
                      p['statistic'] == 'slope' and _f(p['tilt']) == tilt
                      and p.get('head', variant[0]) == variant[0]
                      for p in PRIMARY)
        stats = {}
        for col in (key, 'spc'):
            per_unit: Dict[object, Dict[float, float]] = {}
            for p in points:
                st = p['stats'][col]
                for u, d in zip(st['seeds'], st['diffs']):
                    per_unit.setdefault(u, {})[p['dose']] = d
            st = dose_slope(per_unit)
            # a slope has no declared equivalence margin: no TOST
            st.update(diffs=st['slopes'], seeds=st['units'], tost=None,
                      margin=None)
            stats[col] = st
        label = points[0]['curve']
        failed = sorted({u for p in points for u in p['not_converged']},
                        key=str)
        # each unit's converged doses and those it failed at: a unit left
        # out at some doses still enters the slope over its other (two or
        # more) converged doses, and is named with the doses it lost; one
        # with fewer than two converged doses enters no slope
        entered = set(stats[key]['units'])
        doses: Dict[object, tuple] = {}
        for p in points:
            for u in p['stats'][key]['seeds']:
                doses.setdefault(u, ([], []))[0].append(p['dose'])
            for u in p['not_converged']:
                doses.setdefault(u, ([], []))[1].append(p['dose'])
        partly = {u: sorted(lost) for u, (_, lost) in doses.items()
                  if u in entered and lost}
        outside = {u: (sorted(ok), sorted(lost))
                   for u, (ok, lost) in doses.items() if u not in entered}
        out.append(dict(
            kind='slope', contrast=contrast, layout=points[0]['layout'],
            condition=label, head=variant[0], variant=variant,
            reference=reference, curve=label, tilt=tilt,
            label=f'{label}: slope per unit of P', headline=primary,
            interaction=False, stats=stats,
            judged=[(key, primary, f'{family}, slopes'),
                    ('spc', False, f'{family}, slopes, SPC')],
            not_converged=failed, doses_left_out=partly,
            units_outside=outside))
    return out


def _interactions(rows: List[dict]) -> List[dict]:
    """The context contrast's interactions: a head's difference minus
    its base head's, on the same condition and border pair."""
    out = []
    by_arms = {(r['condition'], r['variant'], r['reference']): r
               for r in rows if r['kind'] == 'comparison'}
    for name, spec in CONTRASTS.items():
        for head, base in spec.get('interactions', ()):
            for r in rows:
                if r['kind'] != 'comparison' or r['contrast'] != name or \
                        r['head'] != head:
                    continue
                other = by_arms.get((r['condition'],
                                     (base, ) + r['variant'][1:],
                                     (base, ) + r['reference'][1:]))
                if other is None:
                    continue
                stats = {}
                for col in r['stats']:
                    a, b = r['stats'][col], other['stats'][col]
                    pair = paired_differences(dict(zip(a['seeds'],
                                                       a['diffs'])),
                                              dict(zip(b['seeds'],
                                                       b['diffs'])))
                    stats[col] = interval(pair['diffs'])
                    stats[col].update(pair)
                family = spec['family']
                out.append(dict(
                    r, kind='interaction', interaction=True, headline=False,
                    head=f'{head} - {base}', stats=stats,
                    label=f'({head} - {base}) of {r["variant"][1]} / pos '
                    f'{r["variant"][2]} - {r["reference"][1]} / pos '
                    f'{r["reference"][2]} ({r["condition"]})',
                    judged=[(col, False, f'{family}, interaction' +
                             ('' if col != 'spc' else ', SPC'))
                            for col, _, _ in r['judged']],
                    not_converged=sorted(set(r['not_converged'] +
                                             other['not_converged']),
                                         key=str)))
    return out


def dose_curves(rows: Sequence[dict]) -> List[dict]:
    """The dose-response curves of judged :func:`design_rows`: ``label``,
    ``contrast``, ``head``, ``tilt``, ``periodic``, ``key`` and ``points``
    (the comparison rows in increasing prior)."""
    curves = OrderedDict()
    for r in rows:
        if r['kind'] == 'comparison' and r.get('curve'):
            curves.setdefault(r['curve'], []).append(r)
    return [dict(label=label, contrast=pts[0]['contrast'],
                 head=pts[0]['head'], tilt=pts[0]['tilt'],
                 periodic=pts[0]['periodic'], key=pts[0]['key'],
                 points=sorted(pts, key=lambda p: p['dose']))
            for label, pts in curves.items()]
