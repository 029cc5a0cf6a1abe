"""Aggregation of the position study's cells: variants, means and
contrasts.

Cells are grouped by the data they saw (the *condition*: layout, and the
prior, validation prior, tilt and periodic flag where the layout has them,
:func:`.results.condition`); within a condition, cells that differ only
in their unit (training seed, and data seed where recorded) are one
*variant* (:func:`group`). A variant's numbers are summarised as the mean
over units and the sample standard deviation (:func:`mean_sd`,
``ddof=1``; one unit shows no spread). :func:`contrasts` pairs two
variants that differ in one factor, unit by unit. Cells whose
``convergence.converged`` is False are left out of every mean and
contrast (and listed by :func:`not_converged`); cells without a verdict
(older records) are kept. The report (:mod:`.report`) and the plots
(:mod:`.plots`) both read the study through this module.
"""
import statistics
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from .design import BORDERS, HEADS, POSITION, STUDY_LAYOUTS, variant_name
from .results import (arm, cell_fields, condition, converged, probe_spc,
                      unit)

# the first value of each factor is the reference the others are compared to
FACTOR_ORDER = dict(head=HEADS, padding=BORDERS, pos=tuple(POSITION))
CONTRAST_KEYS = (('mIoU', 'mIoU'), ('mIoU_pairs', 'pairs mIoU'),
                 ('band0', 'band-0 mIoU'), ('spc', 'SPC (mean)'))
#: Layouts without look-alike pairs: their key column is mIoU.
NO_PAIR_LAYOUTS = ('uniform', 'border-shift')


def cell_values(result: dict) -> Dict[str, Optional[float]]:
    """The numbers of one cell that the report shows (no SPC where the
    linear readout failed to train: :func:`.results.readout_failed`)."""
    m = result['metrics']
    out = dict(mIoU=m.get('mIoU'), mIoU_pairs=m.get('mIoU_pairs'),
               mIoU_others=m.get('mIoU_others'), aAcc=m.get('aAcc'))
    for i, band in enumerate(result.get('bands') or []):
        out[f'band{i}'] = band.get('mIoU')
    spc = probe_spc(result.get('probe'))  # None where the readout failed
    for pattern, value in spc.items():
        out[f'SPC_{pattern}'] = value
    finite = [v for v in spc.values() if v is not None]
    out['spc'] = sum(finite) / len(finite) if finite and len(finite) == len(
        spc) else None
    return out


_values = cell_values


def condition_layout(name: str) -> str:
    """The layout of a condition name (its first word)."""
    return name.split(' ')[0]


def _condition_order(result: dict) -> tuple:
    c = cell_fields(result)
    layout = c['layout']
    rank = STUDY_LAYOUTS.index(layout) if layout in STUDY_LAYOUTS else len(
        STUDY_LAYOUTS)
    return (rank, layout, str(c['periodic']),
            -1 if c['tilt'] is None else c['tilt'],
            -1 if c['prior'] is None else c['prior'],
            -1 if c['val_prior'] is None else c['val_prior'])


def group(results: Sequence[dict], exclude_unconverged: bool = True
          ) -> Dict[str, Dict[tuple, Dict[object, dict]]]:
    """``{condition: {(head, padding, pos): {unit: values}}}``; conditions
    in the layout order of :data:`.design.STUDY_LAYOUTS` (others after, by
    name), then by periodic, tilt, prior and validation prior; variants in
    the order the cells appear.

    Args:
        results (Sequence[dict]): Cell records.
        exclude_unconverged (bool): Leave out cells whose convergence
            verdict is False. Default: True.
    """
    out: Dict[str, Dict[tuple, Dict[object, dict]]] = OrderedDict()
    order = {}
    for result in results:
        if exclude_unconverged and converged(result) is False:
            continue
        name = condition(result)
        order.setdefault(name, _condition_order(result))
        variants = out.setdefault(name, OrderedDict())
        units = variants.setdefault(arm(result),
                                    OrderedDict())
        units[unit(result)] = cell_values(result)
    return OrderedDict((name, out[name])
                       for name in sorted(out, key=lambda n: order[n]))


def not_converged(results: Sequence[dict]) -> Dict[str, Dict[tuple, list]]:
    """``{condition: {variant: [unit, ...]}}`` of the cells whose
    convergence verdict is False (left out of :func:`group`)."""
    out: Dict[str, Dict[tuple, list]] = OrderedDict()
    for r in results:
        if converged(r) is False:
            out.setdefault(condition(r), OrderedDict()).setdefault(
                arm(r), []).append(unit(r))
    return out


def mean_sd(values: Sequence[Optional[float]]) -> tuple:
    """Mean and sample standard deviation of the non-missing values
    (``None`` when there are none; sd ``None`` with a single value)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    sd = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), sd


def fmt(mean: Optional[float], sd: Optional[float], digits: int = 1) -> str:
    """``mean ± sd`` with ``digits`` decimals; ``n/a`` without a mean."""
    if mean is None:
        return 'n/a'
    text = f'{mean:.{digits}f}'
    return text if sd is None else f'{text} ± {sd:.{digits}f}'


def band_names(results: Sequence[dict]) -> List[str]:
    """Readable band names: ``0-5%`` (of the short side), ``>=25%``, or
    ``0-8px``; the metric's key names when the bounds are missing."""
    for result in results:
        if result.get('bands'):
            return [_band_label(b) for b in result['bands']]
    return []


def _band_label(band: dict) -> str:
    lo, hi = band.get('lo', 'x'), band.get('hi', 'x')
    if not isinstance(lo, (int, float)):
        return band['name'].replace('band', '')
    pct = isinstance(lo, float) or isinstance(hi, float)
    unit = '%' if pct else 'px'
    scale = 100 if pct else 1
    if hi is None:
        return f'>={lo * scale:g}{unit}'
    return f'{lo * scale:g}-{hi * scale:g}{unit}'


def contrasts(variants: dict) -> List[dict]:
    """Pairs of variants that differ in one factor, the second being that
    factor's reference value, with per-seed differences of the
    :data:`CONTRAST_KEYS`."""
    out = []
    factors = ('head', 'padding', 'pos')
    for key, seeds in variants.items():
        for i, factor in enumerate(factors):
            ref_value = FACTOR_ORDER[factor][0]
            if key[i] == ref_value:
                continue
            ref = key[:i] + (ref_value, ) + key[i + 1:]
            if ref not in variants:
                continue
            common = [s for s in seeds if s in variants[ref]]
            if not common:
                continue
            deltas = {}
            for col, _ in CONTRAST_KEYS:
                diffs = [seeds[s][col] - variants[ref][s][col]
                         for s in common if seeds[s].get(col) is not None
                         and variants[ref][s].get(col) is not None]
                deltas[col] = diffs
            out.append(dict(variant=key, reference=ref, factor=factor,
                            seeds=common, deltas=deltas))
    return out


def _column(seeds: Dict[object, dict], col: str) -> Dict[object, float]:
    return {s: v.get(col) for s, v in seeds.items()}


def key_column(layout: str) -> str:
    """The column that answers a comparison on ``layout``: the
    look-alike pairs' mIoU where the layout has them, else mIoU."""
    return 'mIoU' if layout in NO_PAIR_LAYOUTS else 'mIoU_pairs'


def _judged(name: str, spec: dict, layout: str, comparison) -> list:
    """``(column, primary, family)`` of a named comparison: its key column
    and SPC, secondary unless the contrast declares it ``primary``; the
    family is the contrast's (``family``, else its name)."""
    family = spec.get('family', name)
    primary = tuple(comparison) in {tuple(map(tuple, c))
                                    for c in spec.get('primary', ())}
    key = key_column(layout)
    return [(key, primary, family), ('spc', False, f'{family}, SPC')]


def legacy_contrasts() -> dict:
    """The design's contrasts in the form :func:`named_contrasts` reads
    (``layouts``, ``heads``, ``comparisons`` of ``(border, pos)`` keys):
    how the report compares cells on conditions the design does not name
    (e.g. records of older studies)."""
    from .design import CONTRASTS
    return OrderedDict((name, spec) for name, spec in CONTRASTS.items()
                       if 'layouts' in spec and 'heads' in spec)


def named_contrasts(grouped: dict, method: str = 't',
                    contrasts: Optional[dict] = None) -> List[dict]:
    """The comparisons of the legacy contrasts (:func:`legacy_contrasts`,
    or ``contrasts``) that the cells allow,
    on every condition of their layouts, each with a paired 95% interval
    per :data:`CONTRAST_KEYS` column (:func:`.stats.paired_contrast`),
    and for ``context`` the interaction: FCN's difference minus
    ParseNet's, paired by unit.

    Args:
        grouped (dict): :func:`group` of the results.
        method (str): ``'t'`` or ``'bootstrap'``. Default: 't'.

    Returns:
        list[dict]: ``contrast``, ``layout``, ``condition``, ``head``,
        ``variant``, ``reference`` (keys), ``label``, ``headline``
        (bool), ``interaction`` (bool), ``stats`` (column -> contrast
        dict) and ``judged`` (see :mod:`.verdict`).
    """
    from .stats import interval, paired_contrast, paired_differences
    rows = []
    specs = legacy_contrasts() if contrasts is None else contrasts
    for name, spec in specs.items():
        headline = tuple(spec['headline'] or ())
        conditions = [c for c in grouped
                      if condition_layout(c) in spec['layouts']]
        for cond in conditions:
            layout = condition_layout(cond)
            variants = grouped[cond]
            for variant, reference in spec['comparisons']:
                judged = _judged(name, spec, layout, (variant, reference))
                per_head = {}
                for head in spec['heads']:
                    v, r = (head, ) + tuple(variant), (head, ) + tuple(
                        reference)
                    if v not in variants or r not in variants:
                        continue
                    st = {col: paired_contrast(
                        _column(variants[v], col), _column(variants[r], col),
                        method=method) for col, _ in CONTRAST_KEYS}
                    per_head[head] = (v, r)
                    if name == 'context' and head == 'parsenet':
                        continue  # the help and hurt rows already
                    rows.append(dict(
                        contrast=name, layout=layout, condition=cond,
                        head=head, variant=v, reference=r, interaction=False,
                        headline=(tuple(variant), tuple(reference)) ==
                        headline,
                        label=f'{variant_name(v)} vs {variant_name(r)} '
                        f'({cond})',
                        stats=st, judged=judged))
                if name != 'context' or 'parsenet' not in per_head:
                    continue
                pv, pr = per_head['parsenet']
                for other, (fv, fr) in per_head.items():
                    if other == 'parsenet':
                        continue
                    st = {}
                    for col, _ in CONTRAST_KEYS:
                        df = paired_differences(_column(variants[fv], col),
                                                _column(variants[fr], col))
                        dp = paired_differences(_column(variants[pv], col),
                                                _column(variants[pr], col))
                        pair = paired_differences(
                            dict(zip(df['seeds'], df['diffs'])),
                            dict(zip(dp['seeds'], dp['diffs'])))
                        res = interval(pair['diffs'], method=method)
                        res.update(pair)
                        st[col] = res
                    rows.append(dict(
                        contrast=name, layout=layout, condition=cond,
                        head=f'{other} - parsenet', variant=fv, reference=fr,
                        interaction=True, headline=False,
                        label=f'({other} - parsenet) of {variant[0]} / pos '
                        f'{variant[1]} vs {reference[0]} / pos '
                        f'{reference[1]} ({cond})',
                        stats=st, judged=[(col, False, f'{fam}, interaction')
                                          for col, _, fam in judged]))
    return rows
