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
                        mean_sd, variant_name)
from .plots import plot_bands, plot_spc


def load_json(path: str):
    with open(path) as f:
        return json.load(f)


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
