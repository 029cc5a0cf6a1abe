"""The position study's report: ``study.json``, ``study.md`` and plots.

The numbers come from :mod:`.aggregate` (variants as the mean ± sample
standard deviation over seeds, contrasts paired by seed, so that a reader
sees whether every seed agrees on the sign of a difference); the figures
from :mod:`.plots`.
"""
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from possec.fileio import atomic_path, dump_json
from .aggregate import (CONTRAST_KEYS, band_names, contrasts, fmt, group,
                        mean_sd, named_contrasts, variant_name)
from .grid import CONTRASTS
from .plots import plot_bands, plot_contrasts, plot_loss_curves, plot_spc
from .stats import PLATEAU_FRACTION, format_contrast, interval


def load_json(path: str):
    with open(path) as f:
        return json.load(f)


def variant_table(layout: str, variants: dict, band_names: List[str],
                  patterns: List[str]) -> str:
    """One markdown table: a row per variant, mean ± sd over seeds."""
    cols = ['mIoU', 'mIoU_pairs', 'mIoU_others'] + [
        f'band{i}' for i in range(len(band_names))] + [
            f'SPC_{p}' for p in patterns]
    heads = (['variant (head / border / position)', 'seeds', 'mIoU',
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


def _delta_text(diffs: List[float], digits: int) -> str:
    """Mean paired difference and its 95% t-interval, ``*`` when the
    interval excludes 0 (:func:`.stats.format_contrast`)."""
    if not diffs:
        return 'n/a'
    return format_contrast(interval(diffs, method='t'), digits)


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


def named_section(rows: List[dict]) -> str:
    """The contrasts of the study's questions: one table per contrast
    with the paired difference and 95% t-interval of every column, the
    verdict (an effect only when the interval of pairs mIoU, or of mIoU
    for uniform, excludes 0), and a generated reading."""
    lines = ['## Contrasts: where position helps, where it hurts', '',
             'Each row: variant minus reference, paired by seed; mean '
             '[95% confidence interval, Student\'s t on the per-seed '
             'differences, scipy.stats.t], * when the interval excludes 0. '
             'A comparison is called an effect only then. n is the number '
             'of seeds with both cells finished; with n = 1 there is no '
             'interval and nothing is called an effect.', '']
    for name in CONTRASTS:
        items = [r for r in rows if r['contrast'] == name]
        if not items:
            continue
        lines += [f'### {name}', '', CONTRASTS[name]['question'], '']
        heads = ['comparison', 'n'] + [f'Δ {t}' for _, t in CONTRAST_KEYS]
        lines += [f'| {" | ".join(heads)} |', '|' + '---|' * len(heads)]
        for r in items:
            n = r['stats']['mIoU']['n']
            cells = [r['label'] + (' (headline)' if r['headline'] else ''),
                     str(n)]
            for col, _ in CONTRAST_KEYS:
                cells.append(format_contrast(r['stats'][col],
                                             2 if col == 'spc' else 1))
            lines.append(f'| {" | ".join(cells)} |')
        lines.append('')
    lines += ['Reading (generated from the intervals above):', '']
    lines += [f'- {sentence}' for sentence in reading(rows)]
    return '\n'.join(lines)


def _key_column(row: dict) -> str:
    """The column that answers a comparison: the position-paired classes'
    mIoU where the layout has them (position-coded, shortcut*), else
    mIoU."""
    return 'mIoU' if row['layout'] in ('uniform', 'border-shift') \
        else 'mIoU_pairs'


def reading(rows: List[dict]) -> List[str]:
    """One sentence per comparison: effect (and its direction) or no
    effect shown, on its key column, and on probe SPC."""
    out = []
    for r in rows:
        col = _key_column(r)
        st, spc = r['stats'][col], r['stats']['spc']
        what = 'pairs mIoU' if col == 'mIoU_pairs' else 'mIoU'
        if st['mean'] is None:
            continue
        text = f"{r['label']}: {what} {format_contrast(st)}"
        if st['ci_low'] is None:
            text += ' - one seed, no interval: not judged'
        elif st['effect']:
            text += (' - an effect: the variant is ' +
                     ('better' if st['mean'] > 0 else 'worse'))
            if not st['all_same_sign']:
                text += ' (though not every seed agrees in sign)'
        else:
            text += ' - no effect shown (the interval includes 0)'
        if spc['mean'] is not None:
            text += f"; probe SPC {format_contrast(spc, 2)}"
        out.append(text + '.')
    return out


def plateau_table(results: Sequence[dict], layout: str) -> str:
    """Which cells of ``layout`` plateaued (:func:`.stats.plateau` on the
    binned training loss: last third's mean within the stated fraction of
    the middle third's)."""
    rows = [r for r in results if r['cell']['layout'] == layout and
            r.get('plateau')]
    if not rows:
        return ''
    text = [f'Convergence: a cell has plateaued when the mean training '
            f'loss (all heads) over the last third of its run differs from '
            f'the middle third\'s by less than {PLATEAU_FRACTION:.0%} '
            f'(the poly schedule decays the learning rate to ~0, which '
            f'flattens the end of every curve: read with the curves). ',
            'Per variant: ']
    by_variant = {}
    for r in rows:
        c = r['cell']
        key = (c['head'], c['padding'], c['pos'])
        by_variant.setdefault(key, []).append(
            (c['seed'], r['plateau']['plateau'],
             r['plateau']['rel_change']))
    parts = []
    for key, items in by_variant.items():
        ok = sum(p for _, p, _ in items)
        rel = ', '.join(f's{s} {x:+.1%}' for s, _, x in items)
        parts.append(f'{variant_name(key)}: {ok}/{len(items)} plateaued '
                     f'({rel})')
    return ''.join(text) + '; '.join(parts) + '.'


def format_markdown(results: Sequence[dict], settings: dict,
                    command: Optional[str], total: int,
                    plots: Dict[str, str]) -> str:
    grouped = group(results)
    bands = band_names(results)
    patterns = list(settings['probe_patterns'])
    lines = ['# Position study', '']
    if command:
        lines += ['Command:', '', '```', command, '```', '']
    named = named_contrasts(grouped)
    if named:
        lines += named_section(named), ''
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
        conv = plateau_table(results, layout)
        if conv:
            lines += [conv, '']
        items = contrasts(variants)
        if items:
            lines += ['One-factor contrasts (variant minus reference, '
                      'paired by seed; mean [95% t-interval], * when the '
                      'interval excludes 0):', '', contrast_table(items),
                      '']
    for title, name in plots.items():
        lines += [f'![{title}]({name})', '']
    return '\n'.join(lines)


def loss_curves(results: Sequence[dict]) -> dict:
    """``{layout: {variant key: [(iters, loss), ...]}}`` of the cells that
    recorded a training-loss curve."""
    out = OrderedDict()
    for r in results:
        curve = r.get('loss_curve')
        if not curve:
            continue
        c = r['cell']
        out.setdefault(c['layout'], OrderedDict()).setdefault(
            (c['head'], c['padding'], c['pos']), []).append(
                (curve['iters'], curve['loss']))
    return out


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
        grouped = group(results)
        files['bands'] = osp.join(out_dir, 'study_bands.png')
        plot_bands(grouped, band_names(results), files['bands'])
        plots['mIoU by distance to the border'] = 'study_bands.png'
        files['spc'] = osp.join(out_dir, 'study_spc.png')
        plot_spc(grouped, files['spc'])
        plots['probe SPC vs mIoU'] = 'study_spc.png'
        named = named_contrasts(grouped)
        if named:
            files['contrasts'] = osp.join(out_dir, 'study_contrasts.png')
            plot_contrasts(named, files['contrasts'])
            plots['contrasts: pairs mIoU differences with 95% CIs'] = \
                'study_contrasts.png'
        curves = loss_curves(results)
        if curves:
            files['loss'] = osp.join(out_dir, 'study_loss.png')
            plot_loss_curves(curves, files['loss'])
            plots['training loss per variant'] = 'study_loss.png'
    text = format_markdown(results, settings, command, total, plots)
    with atomic_path(files['markdown']) as tmp:
        with open(tmp, 'w') as f:
            f.write(text + '\n')
    return files
