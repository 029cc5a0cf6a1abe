"""Plots of the position study: mIoU by distance to the border, the
probe's SPC against mIoU and the training losses (matplotlib, Agg backend,
small PNGs without a software stamp, so that the same numbers give the
same bytes); the comparisons' figures are in :mod:`.comparison_plots`.

Cells that did not converge are left out of every mean and difference
and marked: ``(k not converged, left out)`` in the legend, and as grey
crosses where a figure shows cells or doses."""
from typing import Dict, List, Optional

from possec.fileio import atomic_path
from .aggregate import mean_sd
from .design import variant_name


def _nc_label(key: tuple, excluded: Optional[dict]) -> str:
    """The variant's name, with ``(k not converged, left out)``: ``k``
    over every condition of ``excluded`` (:func:`.aggregate.not_converged`),
    so that the figure's one legend, an entry per label, names each
    variant once whichever panels its unconverged cells are in."""
    k = sum(len(by_arm.get(key, ())) for by_arm in (excluded or {}).values())
    return variant_name(key) + (f' ({k} not converged, left out)'
                                if k else '')


def plot_bands(grouped: dict, band_names: List[str], path: str,
               excluded: Optional[dict] = None) -> None:
    """mIoU by border band, a line per variant, a panel per condition;
    ``excluded`` is :func:`.aggregate.not_converged`."""
    fig, axes = _panels(len(grouped))
    x = list(range(len(band_names)))
    for ax, layout in zip(axes, grouped):
        for key, seeds in grouped[layout].items():
            stats = [mean_sd([s.get(f'band{i}') for s in seeds.values()])
                     for i in x]
            means = [m if m is not None else float('nan') for m, _ in stats]
            errs = [sd or 0. for _, sd in stats]
            style = _style(key)
            ax.errorbar(x, means, yerr=errs, label=_nc_label(key, excluded),
                        color=style['color'], linestyle=style['linestyle'],
                        marker=style['marker'], capsize=2, linewidth=1.2,
                        markersize=4)
        ax.set_xticks(x)
        ax.set_xticklabels(band_names, fontsize=7)
    _finish(fig, axes, list(grouped),
            'distance to border (share of short side)', path)


def plot_spc(grouped: dict, path: str,
             excluded_points: Optional[Dict[str, list]] = None) -> None:
    """Probe SPC (mean over patterns) against mIoU, a point per cell;
    ``excluded_points`` (condition -> ``[(spc, mIoU), ...]``) are the
    cells that did not converge, drawn as grey crosses. Cells without an
    SPC (their readout failed to train) are not drawn."""
    fig, axes = _panels(len(grouped))
    for ax, layout in zip(axes, grouped):
        for key, seeds in grouped[layout].items():
            style = _style(key)
            # a cell whose readout failed has no SPC to draw
            drawn = [s for s in seeds.values() if s['spc'] is not None]
            if not drawn:
                continue
            xs = [s['spc'] for s in drawn]
            ys = [s['mIoU'] for s in drawn]
            ax.scatter(xs, ys, label=variant_name(key),
                       marker=style['marker'], s=30,
                       facecolors='none' if style['hollow'] else
                       style['color'], edgecolors=style['color'])
        points = (excluded_points or {}).get(layout) or []
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points],
                       marker='x', s=30, color='gray',
                       label='not converged (left out of effects)')
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
    num = max(1, num)  # an empty panel when every cell is left out
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
# no variant draws a line of dots only (matplotlib's ':' or the like),
# which the validations figure keeps for the cells that did not converge
# (position -1: dash-dot-dot; shift: long dashes)
_LINES = {'none': '-', '+1': '--', '-1': (0, (4, 1, 1, 1, 1, 1)),
          'remove': (0, (5, 1, 1, 1)), 'shift': (0, (8, 2)),
          'erase': (0, (3, 1))}


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


def _legend(fig, axes, ncol: Optional[int] = None) -> None:
    """One legend below the panels with every variant of any panel, in
    ``ncol`` columns (default: as many as fit the figure's width)."""
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    # as many columns as fit the figure's width (a label is ~2.2 inches)
    ncol = ncol or max(1, min(3, len(handles),
                              int(fig.get_figwidth() // 2.2)))
    rows = -(-len(handles) // ncol)
    fig.tight_layout(rect=(0, min(0.6, 0.05 + 0.045 * rows), 1, 1))
    fig.legend(list(handles.values()), list(handles), loc='lower center',
               ncol=ncol, fontsize=7, frameon=False)


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt
    with atomic_path(path) as tmp:
        # no 'Software' stamp: the bytes depend on the numbers only
        fig.savefig(tmp, format='png', dpi=90, metadata={'Software': None})
    plt.close(fig)


def plot_loss_curves(curves: dict, path: str,
                     excluded: Optional[dict] = None) -> None:
    """Training loss per variant (mean over all its cells, converged or
    not, at each logged window), a panel per condition; ``curves`` is
    ``{condition: {key: [(iters, loss), ...]}}``, ``excluded``
    :func:`.aggregate.not_converged` (named in the legend)."""
    fig, axes = _panels(len(curves))
    for ax, layout in zip(axes, curves):
        for key, runs in curves[layout].items():
            style = _style(key)
            n = min(len(loss) for _, loss in runs)
            iters = runs[0][0][:n]
            mean = [sum(loss[i] for _, loss in runs) / len(runs)
                    for i in range(n)]
            ax.plot(iters, mean, label=_nc_label(key, excluded),
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


def plot_validation_curves(curves: dict, path: str) -> None:
    """Each cell's key metric at every validation, a panel per condition:
    a line per cell in its variant's colour and line style, as in the
    other figures (heads other than ParseNet with hollow markers, and
    dash-dotted where no position factor is added), dotted wherever the
    cell did not converge; the judged windows shaded. ``curves`` is
    ``{condition: {key: [dict(iters, values, converged, windows), ...]}}``
    (:func:`.report.validation_curves`)."""
    fig, axes = _panels(len(curves))
    # a variant's label counts its unconverged cells over every panel, so
    # that the legend (one entry per label) names each variant once
    failed = {}
    for layout in curves.values():
        for key, cells in layout.items():
            failed[key] = failed.get(key, 0) + sum(
                c['converged'] is False for c in cells)
    for ax, layout in zip(axes, curves):
        spans = set()
        for key, cells in curves[layout].items():
            style = _style(key)
            label = variant_name(key) + (
                f' ({failed[key]} not converged, dotted)'
                if failed[key] else '')
            for c in cells:
                ax.plot(c['iters'], c['values'], color=style['color'],
                        linestyle=':' if c['converged'] is False
                        else style['linestyle'],
                        marker='o', markersize=2.5, linewidth=1.0,
                        markerfacecolor='white' if style['hollow']
                        else style['color'], label=label)
                label = None  # one legend entry per variant
                spans.update(tuple(w) for w in c['windows'] or ())
        for lo, hi in sorted(spans):
            ax.axvspan(lo, hi, color='0.85', zorder=0, linewidth=0)
        ax.set_xlabel('iteration', fontsize=8)
        ax.set_ylabel('key metric (pairs mIoU, else mIoU)', fontsize=8)
        ax.set_title(f'{layout}\nshaded: the windows judged', fontsize=9)
        ax.grid(alpha=0.3)
    # one variant per legend row (the labels are long), the figure taller
    # by a row per variant
    fig.set_figheight(fig.get_figheight() + 0.2 * len(
        {k for layout in curves.values() for k in layout}))
    _legend(fig, axes, ncol=1)
    _save(fig, path)
