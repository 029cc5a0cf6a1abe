"""Files of the position-channel measurement: JSON, a long CSV, figures
and the printed table."""
import csv
import json
import os
import os.path as osp
from typing import List, Optional

import numpy as np
from scipy import stats

from possec.apis.paths import check_output_dir
from possec.errors import UserError
from possec.fileio import atomic_path, dump_json
from ..common import to_jsonable
from .plots import (READOUTS, fmt, plot_compare, plot_decoding,
                    plot_regions, plot_reliance)

NAME = 'position_channels'


def channel_rows(table: dict) -> List[dict]:
    """One row per channel of the layer, in rank order (decreasing
    placement eta squared)."""
    anova = table['anova']
    flip = table['flip']
    flip_rank = None
    if flip is not None:
        flip_rank = np.empty(len(flip), int)
        flip_rank[np.argsort(-flip, kind='stable')] = np.arange(len(flip))
    rows = []
    for rank, c in enumerate(table['order']):
        rows.append(dict(
            rank=rank, channel=int(c), eta2=float(anova['eta2'][c]),
            F=float(anova['F'][c]), p=float(anova['p'][c]),
            position=bool(table['position'][c]), kind=str(table['kind'][c]),
            peak=int(table['peak'][c]),
            concentration=float(table['concentration'][c]),
            flip=None if flip is None else float(flip[c]),
            flip_rank=None if flip_rank is None else int(flip_rank[c])))
    return rows


def summary(result: dict, table: dict) -> dict:
    """Counts of position channels by kind, the agreement of the two
    rankings, and the layer's read-outs."""
    kinds = list(table['kind'])
    out = dict(position_channels=int(table['position'].sum()),
               overall=kinds.count('overall'), region=kinds.count('region'),
               channels=len(kinds))
    if table['flip'] is not None:
        rho = stats.spearmanr(table['anova']['eta2'], table['flip'])
        out['spearman_eta2_flip'] = float(rho.statistic)
        flip_order = np.argsort(-table['flip'], kind='stable')
        out['top_k_overlap'] = {
            str(k): len(set(table['order'][:k]) & set(flip_order[:k])) / k
            for k in result['ks']}
    out['layer_readouts'] = {
        r['background']: {k: r[k]['acc'] for k in READOUTS}
        for r in result['decoding'] if r['is_layer']}
    return out


def format_table(result: dict) -> str:
    """The read-outs and the reliance curve as markdown tables."""
    lines = [f'### pooled-vector read-outs (grid {result["grid"]}x'
             f'{result["grid"]}, chance {100 / result["grid"]**2:.0f}%)', '',
             '| feature | background | C | position ch. | position | '
             'permuted | content | permuted |', '|---|---|---:|---:|---:|'
             '---:|---:|---:|']
    for r in result['decoding']:
        accs = ' | '.join(f'{100 * r[k]["acc"]:.0f}%' for k in READOUTS)
        lines.append(f'| {r["feature"]} | {r["background"]} | '
                     f'{r["channels"]} | {r["position_channels"]} | '
                     f'{accs} |')
    s = result['summary']
    lines += ['', f'{result["layer"]}: {s["position_channels"]} of '
              f'{s["channels"]} channels carry position (F test, '
              f'Bonferroni 5%): {s["overall"]} overall, {s["region"]} '
              f'region-specific']
    if 'spearman_eta2_flip' in s:
        lines[-1] += (f'; Spearman of eta2 and the flip score '
                      f'{s["spearman_eta2_flip"]:.2f}')
    lines += ['', f'### reliance: {result["layer"]}, channels replaced by '
              f'their means ({result["num_images"]} test images, '
              f'{result["draws"]} random draws)', '',
              '| metric | k | clean | position top-k | flip top-k | '
              'random mean [95% CI] | p |', '|---|---:|---:|---:|---:|---|'
              '---:|']
    for r in result['reliance']['curve']:
        if r['metric'] not in ('mIoU', 'mIoU_pairs'):
            continue
        rand = r.get('random')
        rtext = (f'{rand["mean"]:.1f} [{rand["ci"][0]:.1f}, '
                 f'{rand["ci"][1]:.1f}]') if rand else 'n/a'
        lines.append(f'| {r["metric"]} | {r["k"]} | {fmt(r["clean"])} | '
                     f'{fmt(r["position"])} | {fmt(r.get("flip"))} | {rtext} '
                     f'| {fmt(r.get("p_position"), 3)} |')
    reg = result['regions']
    drops_in = [g['drop_in'] for g in reg['regions']]
    drops_out = [g['drop_out'] for g in reg['regions']
                 if g['drop_out'] is not None]
    lines += ['', f'region ablation (k={reg["k"]} per region): mean mIoU '
              f'drop inside the region {fmt(np.nanmean(drops_in))}, outside '
              f'{fmt(np.nanmean(drops_out) if drops_out else None)}']
    return '\n'.join(lines)


def csv_rows(result: dict) -> List[dict]:
    """Every number as a long row: section, item, measure, value and its
    interval."""
    rows = []

    def add(section, item, measure, value, ci=(None, None)):
        rows.append(dict(section=section, item=item, measure=measure,
                         value=value, ci_low=ci[0], ci_high=ci[1]))

    for r in result['decoding']:
        item = f'{r["feature"]}/{r["background"]}'
        add('decoding', item, 'position_channels', r['position_channels'])
        for k in READOUTS:
            add('decoding', item, f'{k}_acc', r[k]['acc'], r[k]['ci'])
            add('decoding', item, f'{k}_chance', r[k]['chance'])
    for c in result['channels']:
        for key in ('rank', 'eta2', 'F', 'p', 'kind', 'peak',
                    'concentration', 'flip', 'flip_rank'):
            add('channel', c['channel'], key, c[key])
    for r in result['reliance']['curve']:
        item = f'{r["metric"]}/k={r["k"]}'
        add('reliance', item, 'clean', r['clean'])
        add('reliance', item, 'position', r['position'])
        if 'flip' in r:
            add('reliance', item, 'flip', r['flip'])
        if 'random' in r:
            add('reliance', item, 'random_mean', r['random']['mean'],
                r['random']['ci'])
            add('reliance', item, 'random_range', None,
                r['random']['range'])
            add('reliance', item, 'p_position', r['p_position'])
    for g in result['regions']['regions']:
        item = f'region={g["region"]}/k={result["regions"]["k"]}'
        add('region', item, 'drop_in', g['drop_in'])
        add('region', item, 'drop_out', g['drop_out'])
    return rows


def write_comparison(paths: List[str], labels: Optional[List[str]],
                     out_dir: str) -> str:
    """``position_channels_compare.png`` from saved results."""
    check_output_dir(out_dir, '--out-dir')
    results = [load_result(p) for p in paths]
    labels = labels or [osp.basename(osp.dirname(osp.abspath(p)))
                        for p in paths]
    if len(labels) != len(results):
        raise UserError(f'{len(labels)} labels for {len(results)} result '
                        f'files: give one label per file')
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, f'{NAME}_compare.png')
    fig = plot_compare(results, labels)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=110)
    return path


def write_results(result: dict, out_dir: str) -> dict:
    """Write ``position_channels.json``, ``.csv``, ``.md`` and the figures
    ``position_channels_{reliance,regions,decoding}.png`` atomically."""
    os.makedirs(out_dir, exist_ok=True)
    files = dict(json=osp.join(out_dir, f'{NAME}.json'),
                 csv=osp.join(out_dir, f'{NAME}.csv'),
                 md=osp.join(out_dir, f'{NAME}.md'))
    for key, plot in (('reliance', plot_reliance), ('regions', plot_regions),
                      ('decoding', plot_decoding)):
        path = osp.join(out_dir, f'{NAME}_{key}.png')
        fig = plot(result)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format='png', dpi=110)
        files[key] = path
    rows = csv_rows(result)
    with atomic_path(files['csv']) as tmp:
        with open(tmp, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(to_jsonable(rows))
    with atomic_path(files['md']) as tmp:
        with open(tmp, 'w') as f:
            f.write(format_table(result) + '\n')
    dump_json(to_jsonable(dict(result, files=files)), files['json'])
    return files


def load_result(path: str) -> dict:
    """A ``position_channels.json`` written before."""
    if not osp.isfile(path):
        raise UserError(f'result file {path!r} not found: pass a '
                        f'{NAME}.json written by this tool')
    try:
        with open(path) as f:
            result = json.load(f)
    except ValueError:
        result = None
    if not isinstance(result, dict) or 'reliance' not in result:
        raise UserError(f'{path!r} is not a {NAME}.json written by this '
                        f'tool')
    return result
