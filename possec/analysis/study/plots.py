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
                       facecolors=style['color'] if key[0] == 'parsenet'
                       else 'none', edgecolors=style['color'])
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
               replicate='tab:purple', partial='tab:brown', none='tab:gray')
_MARKERS = {'none': 'o', '+1': '^', '-1': 'v'}
_LINES = {'none': '-', '+1': '--', '-1': ':'}


def _style(key: tuple) -> dict:
    head, padding, pos = key
    return dict(color=_COLORS.get(padding, 'black'),
                marker=_MARKERS[pos] if head == 'parsenet' else 's',
                linestyle=_LINES[pos] if head == 'parsenet' else '-.')


def _legend(fig, axes) -> None:
    """One legend below the panels with every variant of any panel."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.tight_layout(rect=(0, 0.08 + 0.03 * (len(handles) // 3), 1, 1))
    fig.legend(list(handles.values()), list(handles), loc='lower center',
               ncol=min(3, len(handles)), fontsize=7, frameon=False)


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=90)
    plt.close(fig)
