"""Files of the position-channel measurement: JSON, a long CSV, figures
and the printed table."""
import csv
import json
import os
import os.path as osp
from typing import List, Optional

import numpy as np
from matplotlib.patches import Rectangle
from scipy import stats

from possec.errors import UserError
from possec.fileio import atomic_path, dump_json
from ..common import new_figure, to_jsonable

NAME = 'position_channels'
READOUTS = ('position', 'position_permuted', 'content', 'content_permuted')


def check_out_dir(out_dir: str) -> str:
    """Refuse an output folder that cannot be made, before any work."""
    path = osp.abspath(out_dir)
    probe = path
    while not osp.exists(probe):
        probe = osp.dirname(probe)
    if not osp.isdir(probe):
        raise UserError(f'output folder {out_dir!r} cannot be made: '
                        f'{probe!r} is a file; pass another --out-dir')
    if not os.access(probe, os.W_OK):
        raise UserError(f'output folder {out_dir!r} cannot be written '
                        f'({probe!r} is not writable); pass another '
                        f'--out-dir')
    return out_dir


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
        lines.append(f'| {r["metric"]} | {r["k"]} | {_f(r["clean"])} | '
                     f'{_f(r["position"])} | {_f(r.get("flip"))} | {rtext} '
                     f'| {_f(r.get("p_position"), 3)} |')
    reg = result['regions']
    drops_in = [g['drop_in'] for g in reg['regions']]
    drops_out = [g['drop_out'] for g in reg['regions']
                 if g['drop_out'] is not None]
    lines += ['', f'region ablation (k={reg["k"]} per region): mean mIoU '
              f'drop inside the region {_f(np.nanmean(drops_in))}, outside '
              f'{_f(np.nanmean(drops_out) if drops_out else None)}']
    return '\n'.join(lines)


def _f(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(
            value)):
        return 'n/a'
    return f'{value:.{digits}f}'


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


def plot_reliance(result: dict):
    """mIoU (and pairs mIoU, and the outermost border band's) against k:
    position channels, the flip ranking, and random channels (mean, its
    95% interval, and the 2.5-97.5 percentile range of the draws)."""
    curve = result['reliance']['curve']
    band = next((m for m in result['reliance']['clean']
                 if m.startswith('mIoU_band')), None)
    metrics = [m for m in ('mIoU', 'mIoU_pairs', band)
               if m and any(r['metric'] == m and r['position'] is not None
                            for r in curve)]
    fig, axes = new_figure(1, len(metrics), 3.4)
    for ax, metric in zip(axes[0], metrics):
        rows = [r for r in curve if r['metric'] == metric]
        ks = [r['k'] for r in rows]
        rand = [r.get('random') for r in rows]
        if all(rand):
            ax.fill_between(ks, [r['range'][0] for r in rand],
                            [r['range'][1] for r in rand], color='0.85',
                            label='random: 2.5-97.5% of draws')
            ax.fill_between(ks, [r['ci'][0] for r in rand],
                            [r['ci'][1] for r in rand], color='0.6',
                            label='random: mean, 95% CI')
            ax.plot(ks, [r['mean'] for r in rand], color='0.3', lw=1)
        ax.plot(ks, [_nan(r['position']) for r in rows], 'o-', color='C3',
                label='top-k position (eta2)')
        if 'flip' in rows[0]:
            ax.plot(ks, [_nan(r['flip']) for r in rows], 's--',
                    color='C1', label='top-k flip score')
        ax.axhline(_nan(rows[0]['clean']), color='k', ls=':', lw=1,
                   label='no ablation')
        ax.set_xscale('log', base=2)
        ax.set_xlabel('k channels replaced by their mean')
        ax.set_ylabel(metric)
        ax.set_title(metric, fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f'{result["layer"]} ({result["num_channels"]} channels): '
                 f'reliance on position channels, {result["draws"]} random '
                 f'draws per k', fontsize=9)
    return fig


def _nan(value):
    return np.nan if value is None else value


def plot_regions(result: dict):
    """One panel per region R: the mIoU drop in every region when R's
    channels are replaced by their means (R outlined), and the drop of
    random channels for reference."""
    reg, grid = result['regions'], result['grid']
    drops = np.array([g['drop'] for g in reg['regions']], np.float64)
    rand = reg['regions'][0].get('random_drop')
    cols = grid + (rand is not None)
    fig, axes = new_figure(grid, cols, 2.0)
    finite = np.concatenate([drops[np.isfinite(drops)], np.array(
        rand, np.float64)[np.isfinite(rand)] if rand else []])
    limit = max(float(np.abs(finite).max()) if finite.size else 1., 1e-6)
    for ax in axes.flat:
        ax.set_axis_off()
    for cell in range(grid * grid):
        ax = axes[cell // grid, cell % grid]
        im = ax.imshow(drops[cell].reshape(grid, grid), cmap='RdBu_r',
                       vmin=-limit, vmax=limit)
        r, c = divmod(cell, grid)
        ax.add_patch(_box(r, c))
        g = reg['regions'][cell]
        ax.set_title(f'R{cell}: in {_f(g["drop_in"])}, out '
                     f'{_f(g["drop_out"])}', fontsize=7)
    if rand is not None:
        ax = axes[0, grid]
        ax.imshow(np.array(rand, np.float64).reshape(grid, grid),
                  cmap='RdBu_r', vmin=-limit, vmax=limit)
        ax.set_title(f'{reg["k"]} random channels', fontsize=7)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6,
                 label='mIoU drop (points)')
    fig.suptitle(f'region ablation at {result["layer"]}: the {reg["k"]} '
                 f'channels of each region R (outlined) replaced by their '
                 f'means', fontsize=8)
    return fig


def _box(row: int, col: int):
    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, ec='lime',
                     lw=2)


def plot_decoding(result: dict):
    """Held-out accuracy of the placement and content read-outs per pooled
    vector and background, with and without channel identity."""
    rows = result['decoding']
    bgs = list(dict.fromkeys(r['background'] for r in rows))
    fig, axes = new_figure(1, len(bgs), 4.2)
    for ax, bg in zip(axes[0], bgs):
        sub = [r for r in rows if r['background'] == bg]
        x = np.arange(len(sub))
        width = 0.2
        for j, (key, colour) in enumerate(zip(
                READOUTS, ('C3', 'mistyrose', 'C0', 'lightsteelblue'))):
            acc = np.array([r[key]['acc'] for r in sub])
            err = np.abs(np.array([r[key]['ci'] for r in sub]).T - acc)
            ax.bar(x + (j - 1.5) * width, 100 * acc, width, yerr=100 * err,
                   color=colour, ec='k', lw=0.5, label=key.replace('_', ' '))
        ax.axhline(100 * sub[0]['position']['chance'], color='C3', ls=':',
                   lw=1)
        ax.axhline(100 * sub[0]['content']['chance'], color='C0', ls=':',
                   lw=1)
        ax.set_xticks(x, [r['feature'] for r in sub], rotation=30,
                      fontsize=7, ha='right')
        ax.set_ylabel('held-out accuracy (%)')
        ax.set_ylim(0, 105)
        ax.set_title(f'{bg} background (dotted: chance)', fontsize=9)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc='outside lower center', ncols=4,
               fontsize=7)
    return fig


def plot_compare(results: List[dict], labels: List[str]):
    """Several models side by side: the placement read-out per pooled
    vector (plain, and with permuted channels), and the mIoU change when
    the top-k position channels or k random channels (mean and 95%
    interval) are replaced by their means."""
    metrics = ['mIoU'] + (['mIoU_pairs'] if all(
        r['reliance'].get('pairs') for r in results) else [])
    bgs = list(dict.fromkeys(d['background'] for d in results[0][
        'decoding']))
    fig, axes = new_figure(2, max(len(bgs), len(metrics)), 3.6)
    for ax in axes.flat:
        ax.set_visible(False)
    for j, bg in enumerate(bgs):
        ax = axes[0, j]
        ax.set_visible(True)
        for i, (res, label) in enumerate(zip(results, labels)):
            rows = [d for d in res['decoding'] if d['background'] == bg]
            x = np.arange(len(rows))
            for key, style in (('position', '-o'),
                               ('position_permuted', ':x')):
                ax.plot(x, [100 * d[key]['acc'] for d in rows], style,
                        color=f'C{i}', label=f'{label}'
                        f'{" permuted" if "perm" in key else ""}')
            ax.set_xticks(x, [d['feature'] for d in rows], rotation=30,
                          ha='right', fontsize=7)
        ax.axhline(100 * rows[0]['position']['chance'], color='k', ls=':',
                   lw=1)
        ax.set_ylim(0, 105)
        ax.set_ylabel('placement read-out, held out (%)')
        ax.set_title(f'{bg} background (dotted: chance)', fontsize=9)
        ax.legend(fontsize=6)
    for j, metric in enumerate(metrics):
        ax = axes[1, j]
        ax.set_visible(True)
        for i, (res, label) in enumerate(zip(results, labels)):
            rows = [r for r in res['reliance']['curve']
                    if r['metric'] == metric]
            ks = [r['k'] for r in rows]
            base = rows[0]['clean'] if rows else None
            if base is None or not all(r.get('random') for r in rows):
                continue
            ax.fill_between(ks, [r['random']['ci'][0] - base for r in rows],
                            [r['random']['ci'][1] - base for r in rows],
                            color=f'C{i}', alpha=0.2)
            ax.plot(ks, [r['random']['mean'] - base for r in rows], '--',
                    color=f'C{i}', lw=1, label=f'{label}: random k')
            ax.plot(ks, [_nan(r['position']) - base for r in rows], '-o',
                    color=f'C{i}', label=f'{label}: top-k position')
        ax.axhline(0, color='k', lw=0.8)
        ax.set_xscale('log', base=2)
        ax.set_xlabel('k channels replaced by their mean')
        ax.set_ylabel(f'{metric} change (points)')
        ax.set_title(f'{metric}: ablation minus clean (band: 95% CI of '
                     f'the random mean)', fontsize=8)
        ax.legend(fontsize=6)
    return fig


def write_comparison(paths: List[str], labels: Optional[List[str]],
                     out_dir: str) -> str:
    """``position_channels_compare.png`` from saved results."""
    check_out_dir(out_dir)
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
