"""Figures of the position-channel measurement: the read-outs, the
reliance curves with the random band, the region ablation map, and
several saved runs side by side."""
from typing import List

import numpy as np
from matplotlib.patches import Rectangle

from ..common import new_figure

READOUTS = ('position', 'position_permuted', 'content', 'content_permuted')


def fmt(value, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals, or ``n/a``."""
    if value is None or (isinstance(value, float) and not np.isfinite(
            value)):
        return 'n/a'
    return f'{value:.{digits}f}'


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
        ax.set_title(f'R{cell}: in {fmt(g["drop_in"])}, out '
                     f'{fmt(g["drop_out"])}', fontsize=7)
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
        ax.set_title(f'{metric} change (band: 95% CI of random mean)',
                     fontsize=8)
        ax.legend(fontsize=6)
    return fig
