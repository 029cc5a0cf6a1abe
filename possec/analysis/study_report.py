"""The position study's report: ``study.json``, ``study.md`` and plots.

Cells that differ only in their seed are one *variant*; its numbers are
shown as the mean over seeds ± the sample standard deviation (``ddof=1``;
one seed shows no spread). Contrasts compare two variants that differ in
one factor, paired by seed, so that a reader sees whether every seed
agrees on the sign of a difference.
"""
import json
import os.path as osp
import statistics
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from possec.fileio import atomic_path, dump_json
from possec.models.layers import PADDING_MODES
from .study_grid import HEADS, POS_HEADS, STUDY_LAYOUTS

# the first value of each factor is the reference the others are compared to
FACTOR_ORDER = dict(head=HEADS, padding=PADDING_MODES, pos=tuple(POS_HEADS))
CONTRAST_KEYS = (('mIoU', 'mIoU'), ('mIoU_pairs', 'pairs mIoU'),
                 ('band0', 'band-0 mIoU'), ('spc', 'SPC (mean)'))


def load_json(path: str):
    with open(path) as f:
        return json.load(f)


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


def variant_name(key: tuple) -> str:
    return f'{key[0]} / {key[1]} / pos {key[2]}'


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


def variant_table(layout: str, variants: dict, band_names: List[str],
                  patterns: List[str]) -> str:
    """One markdown table: a row per variant, mean ± sd over seeds."""
    cols = ['mIoU', 'mIoU_pairs', 'mIoU_others'] + [
        f'band{i}' for i in range(len(band_names))] + [
            f'SPC_{p}' for p in patterns]
    heads = (['variant (head / padding / pos head)', 'seeds', 'mIoU',
              'pairs mIoU', 'others mIoU'] +
             [f'mIoU {n}' for n in band_names] +
             [f'SPC {p}' for p in patterns])
    lines = [f'| {" | ".join(heads)} |', '|' + '---|' * len(heads)]
    for key, seeds in variants.items():
        row = [variant_name(key), str(len(seeds))]
        for col in cols:
            digits = 2 if col.startswith('SPC') else 1
            row.append(fmt(*mean_sd([s.get(col) for s in seeds.values()]),
                           digits))
        lines.append(f'| {" | ".join(row)} |')
    return '\n'.join(lines)


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


def _delta_text(diffs: List[float], digits: int) -> str:
    if not diffs:
        return 'n/a'
    mean, sd = mean_sd(diffs)
    text = f'{mean:+.{digits}f}'
    if sd is not None:
        text += f' ± {sd:.{digits}f}'
    signs = {d > 0 for d in diffs if d != 0}
    if len(diffs) > 1:
        text += ' (seeds agree)' if len(signs) == 1 and len(
            [d for d in diffs if d != 0]) == len(diffs) else ' (mixed)'
    return text


def contrast_table(items: List[dict]) -> str:
    heads = ['variant', 'vs reference', 'seeds'] + [
        f'Δ {name}' for _, name in CONTRAST_KEYS]
    lines = [f'| {" | ".join(heads)} |', '|' + '---|' * len(heads)]
    for item in items:
        row = [variant_name(item['variant']),
               variant_name(item['reference']), str(len(item['seeds']))]
        for col, _ in CONTRAST_KEYS:
            row.append(_delta_text(item['deltas'][col],
                                   2 if col == 'spc' else 1))
        lines.append(f'| {" | ".join(row)} |')
    return '\n'.join(lines)


def format_markdown(results: Sequence[dict], settings: dict,
                    command: Optional[str], total: int,
                    plots: Dict[str, str]) -> str:
    grouped = group(results)
    bands = band_names(results)
    patterns = list(settings['probe_patterns'])
    lines = ['# Position study', '']
    if command:
        lines += ['Command:', '', '```', command, '```', '']
    lines += [f'{len(results)} of {total} cells finished.', '',
              'Settings: ' + ', '.join(f'{k}={v}' for k, v in
                                       sorted(settings.items())), '',
              'Numbers are the mean over seeds ± the sample standard '
              'deviation (ddof=1) across seeds. mIoU and the probe\'s SPC '
              'are in % and [-1, 1]. "pairs mIoU" averages the ten classes '
              'that the position-coded layout separates by position only '
              '(top vs bottom half), "others mIoU" the other eleven '
              '(background included); in the other layouts the ten are '
              'ordinary classes. Bands are distances d to the border, '
              'd = min(x, y, W-1-x, H-1-y), as shares of the short side '
              '(band 0 is the outermost).', '']
    for layout, variants in grouped.items():
        lines += [f'## {layout}', '',
                  variant_table(layout, variants, bands, patterns), '']
        items = contrasts(variants)
        if items:
            lines += ['Contrasts (variant minus reference, paired by seed; '
                      '"seeds agree" when every seed gives the same sign):',
                      '', contrast_table(items), '']
    for title, name in plots.items():
        lines += [f'![{title}]({name})', '']
    return '\n'.join(lines)


def write_report(results: Sequence[dict], out_dir: str, settings: dict,
                 command: Optional[str] = None,
                 total: Optional[int] = None) -> Dict[str, str]:
    """Write ``study.json``, ``study.md``, ``study_bands.png`` and
    ``study_spc.png`` into ``out_dir`` (each atomically).

    Returns:
        dict: Name -> path of every file written.
    """
    total = len(results) if total is None else total
    files = dict(json=osp.join(out_dir, 'study.json'),
                 markdown=osp.join(out_dir, 'study.md'))
    dump_json(dict(settings=settings, command=command, total=total,
                   finished=len(results), results=list(results)),
              files['json'])
    plots = OrderedDict()
    if results:
        from .study_plots import plot_bands, plot_spc
        grouped = group(results)
        files['bands'] = osp.join(out_dir, 'study_bands.png')
        plot_bands(grouped, band_names(results), files['bands'])
        plots['mIoU by distance to the border'] = 'study_bands.png'
        files['spc'] = osp.join(out_dir, 'study_spc.png')
        plot_spc(grouped, files['spc'])
        plots['probe SPC vs mIoU'] = 'study_spc.png'
    text = format_markdown(results, settings, command, total, plots)
    with atomic_path(files['markdown']) as tmp:
        with open(tmp, 'w') as f:
            f.write(text + '\n')
    return files
