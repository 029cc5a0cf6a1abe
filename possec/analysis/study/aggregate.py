"""Aggregation of the position study's cells: variants, means and
contrasts.

Cells that differ only in their seed are one *variant*
(:func:`group`); a variant's numbers are summarised as the mean over seeds
and the sample standard deviation (:func:`mean_sd`, ``ddof=1``; one seed
shows no spread). :func:`contrasts` pairs two variants that differ in one
factor, seed by seed. The report (:mod:`.report`) and the plots
(:mod:`.plots`) both read the study through this module.
"""
import statistics
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from .grid import BORDERS, HEADS, POSITION, STUDY_LAYOUTS, variant_name

# the first value of each factor is the reference the others are compared to
FACTOR_ORDER = dict(head=HEADS, padding=BORDERS, pos=tuple(POSITION))
CONTRAST_KEYS = (('mIoU', 'mIoU'), ('mIoU_pairs', 'pairs mIoU'),
                 ('band0', 'band-0 mIoU'), ('spc', 'SPC (mean)'))


def _values(result: dict) -> Dict[str, Optional[float]]:
    """The numbers of one cell that the report shows."""
    m = result['metrics']
    out = dict(mIoU=m.get('mIoU'), mIoU_pairs=m.get('mIoU_pairs'),
               mIoU_others=m.get('mIoU_others'), aAcc=m.get('aAcc'))
    for i, band in enumerate(result.get('bands', [])):
        out[f'band{i}'] = band['mIoU']
    spc = result['probe']['spc']
    for pattern, value in spc.items():
        out[f'SPC_{pattern}'] = value
    out['spc'] = sum(spc.values()) / len(spc)
    return out


def _variant_key(cell: dict) -> tuple:
    return (cell['head'], cell['padding'], cell['pos'])


def group(results: Sequence[dict]) -> Dict[str, Dict[tuple, Dict[int,
                                                                dict]]]:
    """``{layout: {(head, padding, pos): {seed: values}}}``, in the order
    the cells appear."""
    out: Dict[str, Dict[tuple, Dict[int, dict]]] = OrderedDict()
    for result in results:
        cell = result['cell']
        variants = out.setdefault(cell['layout'], OrderedDict())
        seeds = variants.setdefault(_variant_key(cell), OrderedDict())
        seeds[cell['seed']] = _values(result)
    ordered = OrderedDict()
    for layout in [lt for lt in STUDY_LAYOUTS if lt in out] + [
            lt for lt in out if lt not in STUDY_LAYOUTS]:
        ordered[layout] = out[layout]
    return ordered


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


def _column(seeds: Dict[int, dict], col: str) -> Dict[int, float]:
    return {s: v.get(col) for s, v in seeds.items()}


def named_contrasts(grouped: dict, method: str = 't') -> List[dict]:
    """The comparisons of :data:`.grid.CONTRASTS` that the finished cells
    allow, each with a paired 95% interval per :data:`CONTRAST_KEYS`
    column (:func:`.stats.paired_contrast`), and for ``context`` the
    interaction: FCN's difference minus ParseNet's, paired by seed.

    Args:
        grouped (dict): :func:`group` of the results.
        method (str): ``'t'`` or ``'bootstrap'``. Default: 't'.

    Returns:
        list[dict]: ``contrast``, ``layout``, ``head``, ``variant``,
        ``reference`` (keys), ``label``, ``headline`` (bool),
        ``interaction`` (bool) and ``stats`` (column -> contrast dict).
    """
    from .grid import CONTRASTS
    from .stats import interval, paired_contrast, paired_differences
    rows = []
    for name, spec in CONTRASTS.items():
        headline = tuple(spec['headline'] or ())
        for layout in spec['layouts']:
            variants = grouped.get(layout, {})
            for variant, reference in spec['comparisons']:
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
                        contrast=name, layout=layout, head=head, variant=v,
                        reference=r, interaction=False,
                        headline=(tuple(variant), tuple(reference)) ==
                        headline,
                        label=f'{variant_name(v)} vs {variant_name(r)} '
                        f'({layout})',
                        stats=st))
                if name == 'context' and len(per_head) == 2:
                    (fv, fr), (pv, pr) = per_head['fcn'], per_head['parsenet']
                    st = {}
                    for col, _ in CONTRAST_KEYS:
                        df = paired_differences(_column(variants[fv], col),
                                                _column(variants[fr], col))
                        dp = paired_differences(_column(variants[pv], col),
                                                _column(variants[pr], col))
                        fd, pd_ = dict(zip(df['seeds'], df['diffs'])), dict(
                            zip(dp['seeds'], dp['diffs']))
                        pair = paired_differences(fd, pd_)
                        res = interval(pair['diffs'], method=method)
                        res.update(pair)
                        st[col] = res
                    rows.append(dict(
                        contrast=name, layout=layout, head='fcn - parsenet',
                        variant=fv, reference=fr, interaction=True,
                        headline=False,
                        label=f'(fcn - parsenet) of {variant[0]} / pos '
                        f'{variant[1]} vs {reference[0]} / pos '
                        f'{reference[1]} ({layout})',
                        stats=st))
    return rows
