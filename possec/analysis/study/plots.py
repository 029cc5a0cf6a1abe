"""Plots of the position study: mIoU by distance to the border, and the
probe's SPC against mIoU (matplotlib, Agg backend, small PNGs)."""
from typing import List

from possec.fileio import atomic_path
from .aggregate import mean_sd, variant_name


def plot_bands(grouped: dict, band_names: List[str], path: str) -> None:
    """mIoU by border band, a line per variant, a panel per layout."""
    fig, axes = _panels(len(grouped))
    x = list(range(len(band_names)))
    for ax, layout in zip(axes, grouped):
        for key, seeds in grouped[layout].items():
            stats = [mean_sd([s.get(f'band{i}') for s in seeds.values()])
                     for i in x]
            means = [m if m is not None else float('nan') for m, _ in stats]
            errs = [sd or 0. for _, sd in stats]
            style = _style(key)
            ax.errorbar(x, means, yerr=errs, label=variant_name(key),
                        color=style['color'], linestyle=style['linestyle'],
                        marker=style['marker'], capsize=2, linewidth=1.2,
                        markersize=4)
        ax.set_xticks(x)
        ax.set_xticklabels(band_names, fontsize=7)
    _finish(fig, axes, list(grouped),
            'distance to border (share of short side)', path)


def plot_spc(grouped: dict, path: str) -> None:
    """Probe SPC (mean over patterns) against mIoU, a point per cell."""
    fig, axes = _panels(len(grouped))
    for ax, layout in zip(axes, grouped):
        for key, seeds in grouped[layout].items():
            style = _style(key)
            xs = [s['spc'] for s in seeds.values()]
            ys = [s['mIoU'] for s in seeds.values()]
            ax.scatter(xs, ys, label=variant_name(key),
                       marker=style['marker'], s=30,
                       facecolors='none' if style['hollow'] else
                       style['color'], edgecolors=style['color'])
    _finish(fig, axes, list(grouped),
            'probe SPC of the trained backbone (mean of patterns)', path)


def _panels(num: int):
    """A figure with one mIoU panel per layout, side by side."""
    # pyplot only when a figure is drawn: it selects the Agg backend for
    # the whole process (and takes ~0.5 s to import), which importing
    # possec.analysis must not do
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, num, figsize=(4.6 * num, 3.6),
                             squeeze=False)
    return fig, list(axes[0])


def _finish(fig, axes, layouts: List[str], xlabel: str, path: str) -> None:
    """Label every panel (x label, mIoU, the layout), add the shared
    legend and write the PNG."""
    for ax, layout in zip(axes, layouts):
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel('mIoU (%)', fontsize=8)
        ax.set_title(layout, fontsize=9)
        ax.grid(alpha=0.3)
    _legend(fig, axes)
    _save(fig, path)


_COLORS = dict(zeros='tab:blue', circular='tab:orange', reflect='tab:green',
               replicate='tab:purple', partial='tab:brown', none='tab:gray',
               full='tab:red')
_COORD_COLORS = dict(circular='tab:olive', zeros='tab:cyan')
_MARKERS = {'none': 'o', '+1': '^', '-1': 'v', 'remove': 'X', 'shift': 'P',
            'erase': 'D'}
_LINES = {'none': '-', '+1': '--', '-1': ':', 'remove': (0, (5, 1, 1, 1)),
          'shift': (0, (1, 1)), 'erase': (0, (3, 1))}


def _style(key: tuple) -> dict:
    """Colour from the border (padding, +coord), marker and line from the
    position factor; FCN's lines are dash-dotted, its markers hollow."""
    head, padding, pos = key
    if padding.endswith('+coord'):
        color = _COORD_COLORS.get(padding[:-len('+coord')], 'tab:pink')
    else:
        color = _COLORS.get(padding, 'black')
    fcn = head != 'parsenet'
    return dict(color=color, marker=_MARKERS.get(pos, 'D'),
                linestyle='-.' if fcn and pos == 'none' else _LINES.get(
                    pos, '-'), hollow=fcn)


def _legend(fig, axes) -> None:
    """One legend below the panels with every variant of any panel."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    # as many columns as fit the figure's width (a label is ~2.2 inches)
    ncol = max(1, min(3, len(handles), int(fig.get_figwidth() // 2.2)))
    rows = -(-len(handles) // ncol)
    fig.tight_layout(rect=(0, min(0.6, 0.05 + 0.045 * rows), 1, 1))
    fig.legend(list(handles.values()), list(handles), loc='lower center',
               ncol=ncol, fontsize=7, frameon=False)


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=90)
    plt.close(fig)


def plot_contrasts(rows: List[dict], path: str, column: str = 'mIoU_pairs',
                   title: str = 'pairs mIoU') -> None:
    """The paired differences of the named contrasts with their 95%
    confidence intervals as error bars, one row per comparison (filled:
    the interval excludes 0; hollow: it does not, or no interval)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in rows if r['stats'].get(column, {}).get('mean')
            is not None]
    # room for the longest comparison label (~0.06 inch per character)
    width = 5 + 0.06 * max([len(r['label']) + len(r['contrast']) + 2
                            for r in rows] or [0])
    fig, ax = plt.subplots(figsize=(width, 1.0 + 0.3 * max(1, len(rows))))
    for i, row in enumerate(rows):
        st = row['stats'][column]
        y = len(rows) - 1 - i
        lo, hi = st.get('ci_low'), st.get('ci_high')
        err = None if lo is None else [[st['mean'] - lo], [hi - st['mean']]]
        color = 'tab:red' if st['mean'] < 0 else 'tab:blue'
        ax.errorbar([st['mean']], [y], xerr=err, fmt='o', color=color,
                    mfc=color if st.get('effect') else 'white', capsize=3,
                    markersize=5)
        ax.scatter(st.get('diffs', []), [y] * len(st.get('diffs', [])),
                   s=8, color='gray', alpha=0.6, zorder=3)
    ax.axvline(0, color='black', linewidth=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['contrast']}: {r['label']}"
                        for r in reversed(rows)], fontsize=7)
    ax.set_xlabel(f'Δ {title} (variant - reference), mean and 95% '
                  f't-interval; grey: seeds', fontsize=8)
    ax.grid(alpha=0.3, axis='x')
    # explicit margins: the labels' width is known, tight_layout clips them
    height = fig.get_figheight()
    fig.subplots_adjust(left=(width - 5 + 0.2) / width, right=0.97,
                        bottom=min(0.45, 0.55 / height),
                        top=1 - min(0.3, 0.15 / height))
    _save(fig, path)


def plot_loss_curves(curves: dict, path: str) -> None:
    """Training loss per variant (mean over seeds at each logged window),
    a panel per layout; ``curves`` is ``{layout: {key: [(iters, loss),
    ...]}}``."""
    fig, axes = _panels(len(curves))
    for ax, layout in zip(axes, curves):
        for key, runs in curves[layout].items():
            style = _style(key)
            n = min(len(loss) for _, loss in runs)
            iters = runs[0][0][:n]
            mean = [sum(loss[i] for _, loss in runs) / len(runs)
                    for i in range(n)]
            ax.plot(iters, mean, label=variant_name(key),
                    color=style['color'], linestyle=style['linestyle'],
                    linewidth=1.2)
        ax.set_yscale('log')
        ax.set_xlabel('iteration', fontsize=8)
        ax.set_ylabel('training loss (all heads, mean of seeds)',
                      fontsize=8)
        ax.set_title(layout, fontsize=9)
        ax.grid(alpha=0.3)
    _legend(fig, axes)
    _save(fig, path)
